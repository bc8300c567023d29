import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findBinaries, findFirmware, findIpcs, findLibraries } from '../../../src/host/driver-files.js';
import { readLdCache, type LdCache } from '../../../src/host/ldcache.js';
import { LIB32_DIR, LIB64_DIR, driverLibs, makeFakeRoot, removeFakeRoot } from '../../helpers/fake-root.js';

const V = '550.54.15';

describe('findLibraries', () => {
  let root: string;
  let cache: LdCache;
  beforeAll(() => {
    root = makeFakeRoot({
      libs: [
        ...driverLibs(V, ['libnvidia-ml', 'libcuda', 'libnvidia-pkcs11-openssl3', 'libnvidia-encode', 'libnvidia-gtk3']),
        // a stale library of an older driver, still in the cache under another directory
        { file: 'libnvidia-cfg.so.470.82.01', soname: 'libnvidia-cfg.so.1', dir: '/usr/lib64' },
        { file: `libcuda.so.${V}`, soname: 'libcuda.so.1', arch: 'i386' },
      ],
      // the ld.so.conf has to list /usr/lib64 too
      files: { '/etc/ld.so.conf': `${LIB64_DIR}\n/usr/lib64\n${LIB32_DIR}\n` },
    });
    cache = readLdCache(root);
  });
  afterAll(() => removeFakeRoot(root));

  it('selects by prefix for the capabilities, resolves soname links, reports missing', () => {
    const r = findLibraries(root, cache, ['utility', 'compute'], V);
    expect(r.libraries).toEqual([
      `${LIB64_DIR}/libnvidia-ml.so.${V}`,
      `${LIB64_DIR}/libcuda.so.${V}`,
      `${LIB64_DIR}/libnvidia-pkcs11-openssl3.so.${V}`,
    ]);
    // libnvidia-cfg exists only in version 470: filtered out by the driver version
    expect(r.missing).toContain('libnvidia-cfg.so');
    expect(r.missing).toContain('libnvidia-nvvm.so');
    expect(r.missing).not.toContain('libcuda.so');
    expect(r.libraries32).toEqual([]);
    expect(r.missing32).toEqual([]);
  });

  it('never takes libraries no capability asks for', () => {
    const r = findLibraries(root, cache, ['utility'], V);
    expect(r.libraries).toEqual([`${LIB64_DIR}/libnvidia-ml.so.${V}`]);
    expect(findLibraries(root, cache, ['video'], V).libraries).toContain(`${LIB64_DIR}/libnvidia-encode.so.${V}`);
    expect(findLibraries(root, cache, ['compute'], V).libraries).not.toContain(`${LIB64_DIR}/libnvidia-encode.so.${V}`);
    const all = findLibraries(root, cache, ['utility', 'compute', 'video', 'graphics', 'display', 'ngx'], V).libraries;
    expect(all.some((p) => p.includes('gtk3'))).toBe(false);
  });

  it('takes the stale library when asked for its version', () => {
    expect(findLibraries(root, cache, ['utility'], '470.82.01').libraries).toEqual(['/usr/lib64/libnvidia-cfg.so.470.82.01']);
  });

  it('adds i386 libraries with compat32 (capability or option)', () => {
    const r = findLibraries(root, cache, ['compute', 'compat32'], V);
    expect(r.libraries32).toEqual([`${LIB32_DIR}/libcuda.so.${V}`]);
    expect(r.missing32).toContain('libnvidia-ptxjitcompiler.so');
    expect(findLibraries(root, cache, ['compute'], V, { compat32: true }).libraries32).toEqual([`${LIB32_DIR}/libcuda.so.${V}`]);
    expect(findLibraries(root, cache, ['compute', 'compat32'], V, { compat32: false }).libraries32).toEqual([]);
  });

  it('lets the last acceptable entry win, skips non-ELF files, other arches and links leaving the root', () => {
    const dir = makeFakeRoot({
      libs: [
        { file: `libcuda.so.${V}`, soname: 'libcuda.so.1', dir: '/a' },
        { file: `libcuda.so.${V}`, soname: 'libcuda.so.1', dir: '/b' },
        { file: `libnvidia-ml.so.${V}`, soname: 'libnvidia-ml.so.1', dir: '/a' },
      ],
      ldconfig: false,
      files: { [`/c/libcuda.so.${V}`]: 'not an ELF file' },
      symlinks: {
        '/a/libcuda.so.1': `libcuda.so.${V}`,
        '/b/libcuda.so.1': `/b/libcuda.so.${V}`,
        '/c/libcuda.so.1': `libcuda.so.${V}`,
        // ../ climbs stop at the root: this resolves to <root>/a/libnvidia-ml.so.V, not a host file
        '/d/libnvidia-ml.so.1': `../../../../../../../../a/libnvidia-ml.so.${V}`,
      },
    });
    const entry = (key: string, value: string, flags = 0x0303) => ({ flags, key, value, arch: flags & 0xff00 });
    const manual: LdCache = {
      entries: [
        entry('libcuda.so.1', '/a/libcuda.so.1'),
        entry('libcuda.so.1', '/b/libcuda.so.1'),
        entry('libcuda.so.1', '/c/libcuda.so.1'), // not ELF: rejected, /b stays
        entry('libcuda.so.1', '/a/libcuda.so.1', 0x0a03), // aarch64: ignored
        entry('libnvidia-ml.so.1', '/d/libnvidia-ml.so.1'),
        entry('libnvidia-ml.so.1', '/missing/libnvidia-ml.so.1'),
      ],
    };
    expect(findLibraries(dir, manual, ['utility', 'compute'], V).libraries).toEqual([
      `/a/libnvidia-ml.so.${V}`,
      `/b/libcuda.so.${V}`,
    ]);
    removeFakeRoot(dir);
  });
});

describe('findBinaries / findFirmware / findIpcs', () => {
  let root: string;
  beforeAll(() => {
    root = makeFakeRoot({
      executables: ['/usr/bin/nvidia-smi', '/usr/local/bin/nvidia-cuda-mps-control', '/opt/nvidia/nv-fabricmanager'],
      files: {
        '/usr/bin/nvidia-debugdump': 'not executable',
        [`/lib/firmware/nvidia/${V}/gsp_tu10x.bin`]: 'fw',
        [`/lib/firmware/nvidia/${V}/gsp_ga10x.bin`]: 'fw',
        [`/lib/firmware/nvidia/${V}/README`]: 'no',
        '/lib/firmware/nvidia/470.82.01/gsp_old.bin': 'old',
        '/var/run/nvidia-persistenced/socket': '',
      },
      dirs: ['/sbin/nvidia-persistenced', `/lib/firmware/nvidia/${V}/gsp_dir.bin`, '/tmp/nvidia-mps'],
      symlinks: { '/bin/nv-fabricmanager': '/opt/nvidia/nv-fabricmanager', '/usr/sbin/nvidia-cuda-mps-server': '/nowhere' },
    });
  });
  afterAll(() => removeFakeRoot(root));

  it('finds regular executables on the fixed PATH inside the root, resolved', () => {
    expect(findBinaries(root, ['utility'])).toEqual({
      paths: ['/usr/bin/nvidia-smi', '/opt/nvidia/nv-fabricmanager'],
      missing: ['nvidia-debugdump', 'nvidia-persistenced'],
    });
    expect(findBinaries(root, ['compute'])).toEqual({
      paths: ['/usr/local/bin/nvidia-cuda-mps-control'],
      missing: ['nvidia-cuda-mps-server'],
    });
    expect(findBinaries(root, ['graphics'])).toEqual({ paths: [], missing: [] });
  });

  it('prefers earlier PATH entries', () => {
    const r2 = makeFakeRoot({ executables: ['/usr/local/sbin/nvidia-smi', '/usr/bin/nvidia-smi'] });
    expect(findBinaries(r2, ['utility']).paths).toEqual(['/usr/local/sbin/nvidia-smi']);
    removeFakeRoot(r2);
  });

  it('finds the GSP firmware of this driver version only', () => {
    expect(findFirmware(root, V)).toEqual([`/lib/firmware/nvidia/${V}/gsp_ga10x.bin`, `/lib/firmware/nvidia/${V}/gsp_tu10x.bin`]);
    expect(findFirmware(root, '1.2.3')).toEqual([]);
  });

  it('finds the IPC endpoints that exist', () => {
    expect(findIpcs(root, ['utility', 'compute'])).toEqual({
      paths: ['/var/run/nvidia-persistenced/socket', '/tmp/nvidia-mps'],
      missing: ['/var/run/nvidia-fabricmanager/socket'],
    });
    expect(findIpcs(root, ['graphics']).paths).toEqual([]);
  });

  it('finds nothing in an empty root', () => {
    const empty = makeFakeRoot({});
    mkdirSync(join(empty, 'usr'));
    expect(findBinaries(empty, ['utility']).paths).toEqual([]);
    expect(findFirmware(empty, V)).toEqual([]);
    expect(findIpcs(empty, ['utility', 'compute']).paths).toEqual([]);
    removeFakeRoot(empty);
  });
});
