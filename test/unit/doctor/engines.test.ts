/** Engine registrations: pure over the parsed files (the project's engine parsers), and the not-installed case. */
import fc from 'fast-check';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkEngine, containerdRegistration, crioRegistration, dockerCgroupDriver, dockerRegistration, droppedAnnotationPrefixes, gatherEngines, type EngineFact,
} from '../../../src/doctor/engines.js';
import { parseToml } from '../../../src/engines/containerd.js';

test('docker: runtimes.nvidia, else any runtime running nvidia-runtime; default-runtime noted', () => {
  expect(dockerRegistration({ runtimes: { nvidia: { path: '/usr/bin/nvidia-runtime' } }, 'default-runtime': 'nvidia' }, 'd.json')).toEqual({
    name: 'nvidia', path: '/usr/bin/nvidia-runtime', file: 'd.json', executable: false, isDefault: true,
  });
  expect(dockerRegistration({ runtimes: { gpu: { path: '/opt/nvidia-container-runtime' } } }, 'd.json')!.name).toBe('gpu');
  expect(dockerRegistration({ runtimes: { crun: { path: '/usr/bin/crun' } } }, 'd.json')).toBeUndefined();
  expect(dockerRegistration({}, 'd.json')).toBeUndefined();
});

test('docker cgroup driver: exec-opts wins; else systemd exactly on cgroup v2', () => {
  expect(dockerCgroupDriver({ 'exec-opts': ['native.cgroupdriver=systemd'] }, false).systemd).toBe(true);
  expect(dockerCgroupDriver({ 'exec-opts': ['native.cgroupdriver=cgroupfs'] }, true).systemd).toBe(false);
  fc.assert(fc.property(fc.boolean(), (v2) => dockerCgroupDriver({}, v2).systemd === v2));
});

const toml = (text: string, file: string) => ({ file, doc: parseToml(text, file) });

test('containerd: the last file with the CRI plugin table wins (a drop-in replaces the main file\'s)', () => {
  const main = toml('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nSystemdCgroup = true\n', 'main.toml');
  expect(containerdRegistration([main])).toMatchObject({ systemd: true });
  expect(containerdRegistration([main]).registration).toBeUndefined();
  const drop = toml('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\nruntime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\nBinaryName = "/usr/bin/nvidia-runtime"\n', 'conf.d/99-nvidia.toml');
  const r = containerdRegistration([main, drop]);
  expect(r.registration).toMatchObject({ name: 'nvidia', path: '/usr/bin/nvidia-runtime', file: 'conf.d/99-nvidia.toml' });
  expect(r.systemd).toBe(false); // the drop-in's handler has no SystemdCgroup
  const v3 = toml('version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]\nBinaryName = "/usr/bin/nvidia-runtime"\n', 'v3.toml');
  expect(containerdRegistration([v3]).registration!.name).toBe('nvidia');
});

test('CRI-O: drop-ins merged in order, cgroup_manager defaults to systemd', () => {
  const r = crioRegistration([toml('[crio.runtime]\ncgroup_manager = "cgroupfs"\n', 'crio.conf'), toml('[crio.runtime.runtimes.nvidia]\nruntime_path = "/usr/bin/nvidia-runtime"\n', '99-nvidia.toml')]);
  expect(r).toMatchObject({ registration: { name: 'nvidia', file: '99-nvidia.toml' }, systemd: false });
  expect(crioRegistration([]).systemd).toBe(true);
});

test('lines: not installed INFO, unregistered WARN with the configure command, a runtime path that is gone FAIL, podman by its CDI devices', () => {
  const base = { files: [] as string[], installed: true };
  expect(checkEngine({ engine: 'crio', installed: false, files: [] }, [], []).status).toBe('INFO');
  expect(checkEngine({ engine: 'docker', ...base }, [], [])).toMatchObject({ status: 'WARN', fix: expect.stringContaining('nvidia-ctk runtime configure --runtime=docker') });
  expect(checkEngine({ engine: 'docker', ...base, registration: { name: 'nvidia', path: '/gone', file: 'd', executable: false, isDefault: false } }, [], []).status).toBe('FAIL');
  expect(checkEngine({ engine: 'podman', ...base }, ['nvidia.com/gpu=all'], []).status).toBe('PASS');
  expect(checkEngine({ engine: 'podman', ...base }, [], []).status).toBe('WARN');
});

test('containerd: a handler that drops the CDI annotations the runtime reads is a WARN naming the strategy; enable_cdi or a covering glob passes', () => {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const handler = (o: { annotations?: string; enableCdi?: boolean }) => toml([
    'version = 2', `[${cri}]`, ...(o.enableCdi ? ['enable_cdi = true'] : []),
    `[${cri}.containerd.runtimes.nvidia]`, ...(o.annotations ? [`container_annotations = ${o.annotations}`] : []),
    `[${cri}.containerd.runtimes.nvidia.options]`, 'BinaryName = "/usr/bin/nvidia-runtime"', '',
  ].join('\n'), 'c.toml');
  const fact = (doc: ReturnType<typeof toml>): EngineFact => {
    const r = containerdRegistration([doc]);
    return { engine: 'containerd', installed: true, files: ['c.toml'], registration: { ...r.registration!, executable: true }, annotations: r.annotations! };
  };
  const none = fact(handler({}));
  expect(none.annotations).toEqual({ passed: [], cdiEnabled: false });
  expect(checkEngine(none, [], ['cdi.k8s.io/'])).toMatchObject({
    status: 'WARN',
    message: expect.stringContaining('does not pass cdi.k8s.io/* annotations to the runtime (container_annotations, enable_cdi off): pods of a device plugin with DEVICE_LIST_STRATEGY=cdi-annotations get no GPU'),
    fix: expect.stringContaining('nvidia-ctk runtime configure --runtime=containerd'),
  });
  expect(checkEngine(fact(handler({ annotations: '["cdi.k8s.io/*"]' })), [], ['cdi.k8s.io/']).status).toBe('PASS');
  // containerd matches with Go's path.Match, whose * stops at "/": a bare "*" passes no cdi.k8s.io/ key.
  expect(checkEngine(fact(handler({ annotations: '["*"]' })), [], ['cdi.k8s.io/']).status).toBe('WARN');
  expect(checkEngine(fact(handler({ enableCdi: true })), [], ['cdi.k8s.io/']).status).toBe('PASS');
  // Only the prefixes the runtime reads matter.
  expect(checkEngine(fact(handler({ annotations: '["cdi.k8s.io/*"]' })), [], ['cdi.k8s.io/', 'example.com/'])).toMatchObject({ status: 'WARN', message: expect.stringContaining('example.com/* annotations') });
  expect(checkEngine(none, [], []).status).toBe('PASS');
});

test('droppedAnnotationPrefixes: exactly the prefixes no glob covers (property: the globs configure writes cover all)', () => {
  const prefix = fc.stringMatching(/^[a-z0-9.-]{1,20}\/$/);
  fc.assert(fc.property(fc.array(prefix, { maxLength: 4 }), fc.array(prefix, { maxLength: 4 }), (wanted, other) => {
    const passed = [...other, ...wanted].map((p) => `${p}*`);
    return droppedAnnotationPrefixes({ passed, cdiEnabled: false }, wanted).length === 0
      && droppedAnnotationPrefixes({ passed: [], cdiEnabled: true }, wanted).length === 0
      && droppedAnnotationPrefixes({ passed: [], cdiEnabled: false }, wanted).length === wanted.length;
  }));
});

describe('gathering from files named by flags', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nvr-doctor-engines-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('an engine with no binary on PATH and no config file is not installed; a daemon.json makes docker installed', () => {
    const none = join(dir, 'none');
    const facts = gatherEngines({ env: { PATH: dir }, dockerConfig: none, containerdConfig: none, crioConfig: join(dir, 'crio', 'crio.conf'), cgroupV2: false });
    expect(facts.map((f) => [f.engine, f.installed])).toEqual([['docker', false], ['containerd', false], ['crio', false], ['podman', false]]);
    const exe = join(dir, 'nvidia-runtime');
    writeFileSync(exe, '#!/bin/sh\n');
    chmodSync(exe, 0o755);
    writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ runtimes: { nvidia: { path: exe } } }));
    const [docker] = gatherEngines({ env: { PATH: dir }, dockerConfig: join(dir, 'daemon.json'), containerdConfig: none, crioConfig: none, cgroupV2: false });
    expect(docker).toMatchObject({ installed: true, registration: { path: exe, executable: true }, systemdCgroup: false });
    expect(checkEngine(docker!, [], []).status).toBe('PASS');
  });

  test('containerd imports (a glob relative to the main file) are read', () => {
    writeFileSync(join(dir, 'config.toml'), 'version = 2\nimports = ["conf.d/*.toml"]\n');
    const conf = join(dir, 'conf.d');
    mkdirSync(conf);
    writeFileSync(join(conf, '99-nvidia.toml'), 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\nBinaryName = "/usr/bin/nvidia-runtime"\n');
    const containerd = gatherEngines({ env: { PATH: dir }, containerdConfig: join(dir, 'config.toml'), dockerConfig: join(dir, 'x'), crioConfig: join(dir, 'x') })[1]!;
    expect(containerd.files).toEqual([join(dir, 'config.toml'), join(conf, '99-nvidia.toml')]);
    expect(containerd.registration).toMatchObject({ name: 'nvidia', file: join(conf, '99-nvidia.toml') });
  });

  test('a malformed daemon.json is a FAIL naming the file', () => {
    writeFileSync(join(dir, 'daemon.json'), '{ nope');
    const [docker] = gatherEngines({ env: { PATH: dir }, dockerConfig: join(dir, 'daemon.json'), containerdConfig: join(dir, 'x'), crioConfig: join(dir, 'x') });
    expect(checkEngine(docker!, [], [])).toMatchObject({ status: 'FAIL', message: expect.stringContaining('daemon.json: not valid JSON') });
  });
});
