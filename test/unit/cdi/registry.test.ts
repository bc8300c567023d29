import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listSpecFiles, readSpecFile } from '../../../src/cdi/load.js';
import { listCdiDevices, loadCdiRegistry, requireTrustedHooks, resolveCdiDevices } from '../../../src/cdi/registry.js';
import type { CdiSpec } from '../../../src/cdi/types.js';
import { NvrError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/dist.js';

let work: string;
beforeEach(() => {
  work = tempDir('cdi-reg');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function dir(name: string, files: Record<string, string | CdiSpec>): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  for (const [f, body] of Object.entries(files)) writeFileSync(join(d, f), typeof body === 'string' ? body : JSON.stringify(body));
  return d;
}

const spec = (kind: string, names: string[], common?: string): CdiSpec => ({
  cdiVersion: '0.5.0',
  kind,
  devices: names.map((n) => ({ name: n, containerEdits: { env: [`DEV_${n.replace(/\W/g, '_')}=${kind}`] } })),
  ...(common ? { containerEdits: { env: [`COMMON=${common}`] } } : {}),
});

const YAML_SPEC = `cdiVersion: "0.5.0"
kind: vendor.com/net
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/null
          hostPath: /dev/null
`;

describe('trust: a spec decides what runs and is mounted as root', () => {
  it('a spec file others can write is refused and named; the trusted ones still load', () => {
    const d = dir('trust', { 'a.json': spec('vendor.com/a', ['0']), 'b.json': spec('vendor.com/b', ['0']) });
    chmodSync(join(d, 'b.json'), 0o666);
    const reg = loadCdiRegistry([d]);
    expect(listCdiDevices(reg)).toEqual(['vendor.com/a=0']);
    expect(reg.errors).toEqual([{ file: join(d, 'b.json'), reason: `not trusted: ${join(d, 'b.json')} is writable by group or others (mode 666): refusing to use it` }]);
  });

  it('a spec directory others can write is refused as a whole', () => {
    const d = dir('open', { 'a.json': spec('vendor.com/a', ['0']) });
    chmodSync(d, 0o777);
    const reg = loadCdiRegistry([d]);
    expect(listCdiDevices(reg)).toEqual([]);
    expect(reg.errors[0]!.reason).toBe(`CDI spec directory ${d}: not trusted: ${d} is writable by group or others (mode 777): none of its specs is used`);
  });

  it('a spec linked from a directory others can write is refused', () => {
    const open = dir('open2', { 'real.json': spec('vendor.com/a', ['0']) });
    chmodSync(open, 0o777);
    const d = dir('linked', {});
    symlinkSync(join(open, 'real.json'), join(d, 'a.json'));
    expect(loadCdiRegistry([d]).errors[0]!.reason).toMatch(new RegExp(`not trusted: ${open} is writable by group or others`));
  });

  it('a hook binary others could replace is refused before anything runs', () => {
    const bin = dir('bin', { 'hook': '#!/bin/sh\n' });
    chmodSync(join(bin, 'hook'), 0o777);
    const edits = { hooks: [{ hookName: 'createRuntime', path: join(bin, 'hook') }] };
    expect(() => requireTrustedHooks(edits)).toThrow(`CDI createRuntime hook ${join(bin, 'hook')} is not trusted: ${join(bin, 'hook')} is writable by group or others (mode 777): refusing to run it as root`);
    chmodSync(join(bin, 'hook'), 0o755);
    expect(() => requireTrustedHooks(edits)).not.toThrow();
  });
});

describe('loading spec files', () => {
  it('reads .json and .yaml only, non-recursively, sorted', () => {
    const d = dir('a', { 'b.json': spec('v.com/a', ['x']), 'a.yaml': YAML_SPEC, 'c.yml': YAML_SPEC, 'd.txt': 'x', 'README': 'x' });
    mkdirSync(join(d, 'sub.json'));
    dir('a/sub', { 'e.json': spec('v.com/e', ['x']) });
    expect(listSpecFiles(d)).toEqual([join(d, 'a.yaml'), join(d, 'b.json')]);
    expect(listSpecFiles(join(work, 'missing'))).toEqual([]);
  });

  it('parses YAML (quoted digit names stay strings) and rejects duplicate keys', () => {
    const d = dir('a', { 'a.yaml': YAML_SPEC, 'dup.yaml': 'cdiVersion: 0.5.0\ncdiVersion: 0.5.0\n' });
    expect(readSpecFile(join(d, 'a.yaml')).devices[0]!.name).toBe('0');
    expect(() => readSpecFile(join(d, 'dup.yaml'))).toThrow(/not valid YAML/);
  });
});

describe('loadCdiRegistry', () => {
  it('indexes devices by qualified name and lists them sorted', () => {
    const d = dir('etc', { 'a.json': spec('nvidia.com/gpu', ['1', '0', 'all']), 'n.yaml': YAML_SPEC });
    const r = loadCdiRegistry([d]);
    expect(r.errors).toEqual([]);
    expect(listCdiDevices(r)).toEqual(['nvidia.com/gpu=0', 'nvidia.com/gpu=1', 'nvidia.com/gpu=all', 'vendor.com/net=0']);
    expect(r.devices.get('vendor.com/net=0')).toEqual(expect.objectContaining({ kind: 'vendor.com/net', file: join(d, 'n.yaml') }));
    expect(r.specDirs).toEqual([d]);
  });

  it('a later directory wins', () => {
    const etc = dir('etc', { 'a.json': spec('nvidia.com/gpu', ['0', '1'], 'etc') });
    const run = dir('run', { 'a.json': spec('nvidia.com/gpu', ['1'], 'run') });
    const r = loadCdiRegistry([etc, run]);
    expect(r.devices.get('nvidia.com/gpu=0')!.file).toBe(join(etc, 'a.json'));
    expect(r.devices.get('nvidia.com/gpu=1')!.file).toBe(join(run, 'a.json'));
    expect(loadCdiRegistry([run, etc]).devices.get('nvidia.com/gpu=1')!.file).toBe(join(etc, 'a.json'));
  });

  it('the same name twice in one directory is a conflict: both dropped, an error for each file, the rest kept', () => {
    const etc = dir('etc', { 'lower.json': spec('nvidia.com/gpu', ['0']) });
    const run = dir('run', { 'a.json': spec('nvidia.com/gpu', ['0', '1']), 'b.json': spec('nvidia.com/gpu', ['0', '2']) });
    const r = loadCdiRegistry([etc, run]);
    expect(listCdiDevices(r)).toEqual(['nvidia.com/gpu=1', 'nvidia.com/gpu=2']);
    expect(r.errors.map((e) => e.file)).toEqual([join(run, 'a.json'), join(run, 'b.json')]);
    expect(r.errors[0]!.reason).toMatch(/conflicting definitions of device nvidia.com\/gpu=0/);
  });

  it('a conflict in a lower directory is resolved by a higher one', () => {
    const etc = dir('etc', { 'a.json': spec('nvidia.com/gpu', ['0']), 'b.json': spec('nvidia.com/gpu', ['0']) });
    const run = dir('run', { 'c.json': spec('nvidia.com/gpu', ['0']) });
    const r = loadCdiRegistry([etc, run]);
    expect(r.devices.get('nvidia.com/gpu=0')!.file).toBe(join(run, 'c.json'));
    expect(r.errors).toHaveLength(2);
  });

  it('invalid files are recorded with file and field and never hide valid ones', () => {
    const d = dir('etc', {
      'good.json': spec('nvidia.com/gpu', ['0']),
      'bad-json.json': '{ nope',
      'unknown-field.json': { ...spec('nvidia.com/gpu', ['9']), extra: true } as unknown as CdiSpec,
      'too-old.json': { ...spec('nvidia.com/gpu', ['8']), cdiVersion: '0.4.0' },
    });
    const r = loadCdiRegistry([d]);
    expect(listCdiDevices(r)).toEqual(['nvidia.com/gpu=0']);
    expect(r.errors).toEqual([
      { file: join(d, 'bad-json.json'), reason: expect.stringMatching(/^not valid JSON/) },
      { file: join(d, 'too-old.json'), reason: 'cdiVersion: "0.4.0" is too old for the fields this spec uses: it needs at least 0.5.0' },
      { file: join(d, 'unknown-field.json'), reason: 'extra: unknown field' },
    ]);
  });

  it('a file given as a directory, or a missing directory, is simply empty', () => {
    const d = dir('etc', { 'a.json': spec('nvidia.com/gpu', ['0']) });
    expect(loadCdiRegistry([join(d, 'a.json'), join(work, 'none'), d]).errors).toEqual([]);
  });
});

describe('resolveCdiDevices', () => {
  const registry = () =>
    loadCdiRegistry([
      dir('etc', { 'gpu.json': spec('nvidia.com/gpu', ['0', '1'], 'gpu'), 'net.json': spec('vendor.com/net', ['a'], 'net'), 'plain.json': spec('vendor.com/plain', ['p']) }),
    ]);

  it('spec-level edits first, once per contributing spec, then devices in request order', () => {
    expect(resolveCdiDevices(registry(), ['nvidia.com/gpu=1', 'vendor.com/net=a', 'nvidia.com/gpu=0', 'vendor.com/plain=p'])).toEqual({
      env: ['COMMON=net', 'DEV_1=nvidia.com/gpu', 'DEV_a=vendor.com/net', 'DEV_0=nvidia.com/gpu', 'DEV_p=vendor.com/plain'],
    });
  });

  it('merges like applyEdits: a later env with the same key replaces in place, duplicates collapse', () => {
    const out = resolveCdiDevices(registry(), ['nvidia.com/gpu=0', 'nvidia.com/gpu=0']);
    expect(out).toEqual({ env: ['COMMON=gpu', 'DEV_0=nvidia.com/gpu'] });
  });

  it('an unknown device is a DEVICE error naming every missing name and the dirs searched', () => {
    const r = registry();
    let err: NvrError | undefined;
    try {
      resolveCdiDevices(r, ['nvidia.com/gpu=0', 'nvidia.com/gpu=7', 'other.com/x=y']);
    } catch (e) {
      err = e as NvrError;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect(err!.code).toBe('DEVICE');
    expect(err!.message).toBe(`unresolvable CDI devices: nvidia.com/gpu=7, other.com/x=y (searched ${r.specDirs.join(', ')})`);
    expect(err!.fix).toMatch(/nvidia-ctk cdi/);
  });

  it('an invalid name is an INPUT error', () => {
    expect(() => resolveCdiDevices(registry(), ['gpu0'])).toThrow(expect.objectContaining({ code: 'INPUT' }));
  });

  it('refuses devices needing fields it cannot apply instead of ignoring them', () => {
    const r = loadCdiRegistry([
      dir('x', { 'n.json': { cdiVersion: '1.1.0', kind: 'v.com/n', devices: [{ name: 'n', containerEdits: { netDevices: [{ hostInterfaceName: 'eth1', name: 'n0' }] } }] } }),
    ]);
    expect(() => resolveCdiDevices(r, ['v.com/n=n'])).toThrow(/netDevices/);
  });

  it('applies intelRdt: the later definition replaces the earlier one whole (spec level, then device)', () => {
    const r = loadCdiRegistry([
      dir('rdt', { 'r.json': { cdiVersion: '0.7.0', kind: 'v.com/r', containerEdits: { intelRdt: { closID: 'spec', l3CacheSchema: 'L3:0=ff' } },
        devices: [{ name: 'a', containerEdits: { intelRdt: { closID: 'dev' } } }, { name: 'b', containerEdits: { env: ['B=1'] } }] } }),
    ]);
    expect(resolveCdiDevices(r, ['v.com/r=a']).intelRdt).toEqual({ closID: 'dev' });
    expect(resolveCdiDevices(r, ['v.com/r=b']).intelRdt).toEqual({ closID: 'spec', l3CacheSchema: 'L3:0=ff' });
  });
});
