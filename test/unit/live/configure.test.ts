/**
 * `nvidia-container-cli configure`'s planning (src/live/configure.ts): the flags as a request, and the applier's
 * plan over a real host inventory of a 4-GPU mock driver root (made by the shipped `nvidia-ctk mock-driver`).
 * Nothing is applied: planConfigure decides everything without touching a container.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadHostInventory, type HostInventory } from '../../../src/host/inventory.js';
import { planConfigure, requestOf, type ConfigureRequest } from '../../../src/live/configure.js';
import type { MockTopology } from '../../../src/mock/topology-types.js';
import { distBin, tempDir } from '../../helpers/dist.js';
import { thrown } from '../../helpers/errors.js';

let dir: string;
let driverRoot: string;
let inventory: HostInventory;
let topology: MockTopology;

beforeAll(() => {
  dir = tempDir('configure');
  driverRoot = join(dir, 'driver');
  execFileSync(distBin('nvidia-ctk'), ['mock-driver', '--root', driverRoot, '--gpus', '4']);
  topology = JSON.parse(readFileSync(join(driverRoot, 'etc/nvidia-mock/topology.json'), 'utf8')) as MockTopology;
  inventory = loadHostInventory({ driverRoot });
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flags = (more: Partial<ConfigureRequest> = {}): ConfigureRequest => ({
  driverRoot,
  rootfs: '/var/lib/lxc/c1/rootfs',
  devices: [],
  capabilities: ['compute', 'utility'],
  requirements: [],
  imexChannels: [],
  noCgroups: false,
  noDevbind: false,
  driverOptions: [],
  ...more,
});

/** The plan's operations, word groups by verb (the grammar of native/hook/apply.c). */
function ops(words: readonly string[]): { mknod: string[][]; bind: string[][]; allow: string[]; folder: string[]; link: string[][]; ldconfig: string[] } {
  const arity: Record<string, number> = { mknod: 5, bind: 3, allow: 1, folder: 1, link: 2, ldconfig: 1, compat: 1 };
  const out = { mknod: [] as string[][], bind: [] as string[][], allow: [] as string[], folder: [] as string[], link: [] as string[][], ldconfig: [] as string[] };
  for (let i = 0; i < words.length;) {
    const verb = words[i]!;
    const k = arity[verb];
    if (k === undefined) throw new Error(`unknown verb ${verb} at word ${i}`);
    const args = words.slice(i + 1, i + 1 + k);
    if (args.length !== k) throw new Error(`${verb}: short`);
    if (verb === 'allow' || verb === 'folder' || verb === 'ldconfig') out[verb].push(args[0]!);
    else out[verb as 'mknod' | 'bind' | 'link'].push(args);
    i += 1 + k;
  }
  return out;
}

const nodePaths = (words: readonly string[]): string[] => ops(words).mknod.map((m) => m[4]!);

describe('requestOf', () => {
  it('--device 1 --compute --utility --require: the runtime\'s request shape', () => {
    expect(requestOf(flags({ devices: ['1'], capabilities: ['utility', 'compute', 'utility'], requirements: ['cuda>=12.0'] }))).toEqual({
      gpu: true, devices: [{ kind: 'index', index: 1 }], capabilities: ['compute', 'utility'], requirements: ['cuda>=12.0'], source: 'env', reasons: [],
    });
  });

  it('--mig-config=all → migAdmin [config]; --mig-monitor=ALL too (case and spaces do not matter)', () => {
    expect(requestOf(flags({ migConfig: 'all' })).migAdmin).toEqual(['config']);
    expect(requestOf(flags({ migConfig: 'all', migMonitor: ' ALL ' })).migAdmin).toEqual(['config', 'monitor']);
    expect(requestOf(flags()).migAdmin).toBeUndefined();
  });

  it.each([['--mig-config', { migConfig: '0' }], ['--mig-config', { migConfig: '' }], ['--mig-monitor', { migMonitor: '0,1' }]] as const)('%s with anything but all → INPUT "only \'all\'"', (flag, more) => {
    const e = thrown(() => requestOf(flags(more)));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain(flag);
    expect(e.message).toMatch(/only 'all'/);
    expect(e.fix).toBe(`pass ${flag}=all`);
  });

  it('--imex-channel lists: split on commas, sorted, unique', () => {
    expect(requestOf(flags({ imexChannels: ['1,0'] })).imexChannels).toEqual([0, 1]);
    expect(requestOf(flags({ imexChannels: ['3', '1,3', ''] })).imexChannels).toEqual([1, 3]);
    expect(requestOf(flags({ imexChannels: [] })).imexChannels).toBeUndefined();
    expect(thrown(() => requestOf(flags({ imexChannels: ['x'] }))).message).toMatch(/--imex-channel/);
  });

  it.each([[['none']], [['void']], [[]], [['none', 'void']]])('--device %j → a GPU request with no devices (driver files only)', (devices) => {
    const r = requestOf(flags({ devices }));
    expect(r.gpu).toBe(true);
    expect(r.devices).toEqual([]);
  });

  it('--device lists: all absorbs, duplicates collapse, bad items are DEVICE errors', () => {
    expect(requestOf(flags({ devices: ['0', 'all'] })).devices).toEqual([{ kind: 'all' }]); // the CLI splits --device=0,all
    expect(requestOf(flags({ devices: ['2', '2', '0'] })).devices).toEqual([{ kind: 'index', index: 2 }, { kind: 'index', index: 0 }]);
    const e = thrown(() => requestOf(flags({ devices: ['gpu0'] })));
    expect(e.code).toBe('DEVICE');
    expect(e.message).toContain('--device');
  });
});

describe('planConfigure over a 4-GPU mock driver root', () => {
  it('--device 1: mknod of /dev/nvidia1, not of the other GPUs; the control nodes; allow rules exactly for those nodes', () => {
    const live = planConfigure(flags({ devices: ['1'] }), inventory, false);
    const paths = nodePaths(live.words);
    expect(paths).toContain('/dev/nvidia1');
    for (const other of ['/dev/nvidia0', '/dev/nvidia2', '/dev/nvidia3']) expect(paths).not.toContain(other);
    expect(paths).toEqual(expect.arrayContaining(['/dev/nvidiactl', '/dev/nvidia-uvm']));
    const plan = ops(live.words);
    expect(plan.allow.sort()).toEqual(plan.mknod.map(([t, maj, min]) => `${t} ${maj}:${min} rwm`).sort());
    expect(plan.mknod.find((m) => m[4] === '/dev/nvidia1')).toEqual(['c', '195', String(topology.gpus[1]!.minor), '666', '/dev/nvidia1']);
    expect(plan.allow).not.toContain('c 195:0 rwm');
    expect(live.granted).toBe(topology.gpus[1]!.uuid);
  });

  it('--device all: every GPU node; none: the control nodes only', () => {
    expect(nodePaths(planConfigure(flags({ devices: ['all'] }), inventory, false).words)).toEqual(expect.arrayContaining(['/dev/nvidia0', '/dev/nvidia1', '/dev/nvidia2', '/dev/nvidia3']));
    const none = planConfigure(flags({ devices: ['none'] }), inventory, false);
    expect(nodePaths(none.words).filter((p) => /^\/dev\/nvidia\d+$/.test(p))).toEqual([]);
    expect(nodePaths(none.words)).toContain('/dev/nvidiactl');
    expect(none.granted).toBe('none');
  });

  it('driver files are bound read-only from the driver root; the ld cache words come last, without --root', () => {
    const live = planConfigure(flags({ devices: ['0'] }), inventory, false);
    const plan = ops(live.words);
    const libcuda = plan.bind.find(([, , target]) => /\/libcuda\.so\.[0-9.]+$/.test(target!));
    expect(libcuda?.[0]).toBe('ro,nosuid,nodev');
    expect(libcuda?.[1]).toBe(`${driverRoot}${libcuda?.[2]}`);
    expect(plan.bind.every(([f]) => f!.split(',').includes('nosuid'))).toBe(true);
    expect(plan.folder.length).toBeGreaterThan(0);
    expect(live.words).not.toContain('--root');
    expect(live.words).not.toContain('/var/lib/lxc/c1/rootfs');
    expect(live.words.lastIndexOf('bind')).toBeLessThan(live.words.indexOf('folder'));
  });

  it('userns: the nodes are bind-mounted from the driver root (nosuid,noexec), never mknod; rules stay', () => {
    const live = planConfigure(flags({ devices: ['1'] }), inventory, true);
    const plan = ops(live.words);
    expect(plan.mknod).toEqual([]);
    expect(plan.bind).toContainEqual(['nosuid,noexec', `${driverRoot}/dev/nvidia1`, '/dev/nvidia1']);
    expect(plan.bind).toContainEqual(['nosuid,noexec', `${driverRoot}/dev/nvidiactl`, '/dev/nvidiactl']);
    expect(plan.bind.map((b) => b[2])).not.toContain('/dev/nvidia0');
    expect(plan.allow).toContain(`c 195:${topology.gpus[1]!.minor} rwm`);
  });

  it('--no-devbind: no node is made or bound, the allow rules are still written', () => {
    const plan = ops(planConfigure(flags({ devices: ['1'], noDevbind: true }), inventory, false).words);
    expect(plan.mknod).toEqual([]);
    expect(plan.bind.filter(([, , p]) => p!.startsWith('/dev/'))).toEqual([]);
    expect(plan.allow).toContain(`c 195:${topology.gpus[1]!.minor} rwm`);
    const inUserns = ops(planConfigure(flags({ devices: ['1'], noDevbind: true }), inventory, true).words);
    expect(inUserns.bind.filter(([, , p]) => p!.startsWith('/dev/'))).toEqual([]);
  });

  it('--no-cgroups: no allow word, the nodes are still made', () => {
    const live = planConfigure(flags({ devices: ['1'], noCgroups: true }), inventory, false);
    expect(live.words).not.toContain('allow');
    expect(nodePaths(live.words)).toContain('/dev/nvidia1');
  });

  it('--no-persistenced drops the persistenced socket mount (the mock has one); the MPS directory stays', () => {
    expect(inventory.ipcs).toContain('/var/run/nvidia-persistenced/socket');
    const socket = (words: string[]) => ops(words).bind.filter(([, , p]) => p!.includes('/nvidia-persistenced/'));
    expect(socket(planConfigure(flags({ devices: ['0'] }), inventory, false).words)).toEqual([
      ['nosuid,nodev,noexec', `${driverRoot}/var/run/nvidia-persistenced/socket`, '/var/run/nvidia-persistenced/socket'],
    ]);
    const without = planConfigure(flags({ devices: ['0'], driverOptions: ['no-persistenced'] }), inventory, false).words;
    expect(socket(without)).toEqual([]);
    expect(without).not.toContain('/var/run/nvidia-persistenced/socket');
    expect(ops(without).bind.map((b) => b[2])).toContain('/tmp/nvidia-mps');
  });

  it('--imex-channel 1: that channel\'s node and rule, not the others', () => {
    const live = planConfigure(flags({ devices: ['0'], imexChannels: ['1'] }), inventory, false);
    const paths = nodePaths(live.words).filter((p) => p.includes('imex'));
    expect(paths).toEqual(['/dev/nvidia-caps-imex-channels/channel1']);
  });

  it('an unmet --require is a REQUIREMENT error (mock: CUDA 12.4, compute capability 9.0)', () => {
    const e = thrown(() => planConfigure(flags({ devices: ['0'], requirements: ['cuda>=99.0'] }), inventory, false));
    expect(e.code).toBe('REQUIREMENT');
    expect(e.message).toMatch(/cuda>=99\.0/);
    // arch is the compute capability: 9.0 on the mock's H100s; every --require must hold
    expect(thrown(() => planConfigure(flags({ devices: ['0'], requirements: ['cuda>=12.0,arch>=10.0'] }), inventory, false)).message).toMatch(/arch>=10\.0/);
    expect(thrown(() => planConfigure(flags({ devices: ['0'], requirements: ['cuda>=12.0', 'arch<9.0'] }), inventory, false)).code).toBe('REQUIREMENT');
    expect(() => planConfigure(flags({ devices: ['0'], requirements: ['arch>=10.0 cuda>=12.0', 'arch=9.0'] }), inventory, false)).not.toThrow();
    expect(() => planConfigure(flags({ devices: ['0'], requirements: ['cuda>=12.0'] }), inventory, false)).not.toThrow();
  });

  it.each([[['nvidia.com/gpu=0']], [['0', 'nvidia.com/gpu=1']], [['runtime.nvidia.com/gpu=all']]])('a CDI name in --device %j is a DEVICE error naming it', (devices) => {
    const e = thrown(() => planConfigure(flags({ devices }), inventory, false));
    expect(e.code).toBe('DEVICE');
    expect(e.message).toContain(devices[devices.length - 1]!);
    expect(e.message).toMatch(/cannot be configured into a running container/);
  });

  it('an unknown GPU is a DEVICE error', () => {
    expect(thrown(() => planConfigure(flags({ devices: ['7'] }), inventory, false)).code).toBe('DEVICE');
  });

  it('--ldconfig=/sbin/ldconfig (no @: the image\'s ldconfig) is a CONFIG error citing CVE-2024-0136', () => {
    const e = thrown(() => planConfigure(flags({ devices: ['0'], ldconfig: '/sbin/ldconfig' }), inventory, false));
    expect(e.code).toBe('CONFIG');
    expect(e.message).toContain('CVE-2024-0136');
    expect(e.fix).toContain('@/sbin/ldconfig');
  });

  it('--ldconfig=@/sbin/ldconfig.real: an ldconfig word with the host path; the default @/sbin/ldconfig: none (the applier\'s default)', () => {
    const real = planConfigure(flags({ devices: ['0'], ldconfig: '@/sbin/ldconfig.real' }), inventory, false);
    expect(ops(real.words).ldconfig).toEqual(['/sbin/ldconfig.real']);
    expect(real.words).not.toContain('@/sbin/ldconfig.real');
    expect(ops(planConfigure(flags({ devices: ['0'], ldconfig: '@/sbin/ldconfig' }), inventory, false).words).ldconfig).toEqual([]);
    expect(ops(planConfigure(flags({ devices: ['0'] }), inventory, false).words).ldconfig).toEqual([]);
  });

  it('--utility only: no libcuda mount and no libcuda link', () => {
    const plan = ops(planConfigure(flags({ devices: ['0'], capabilities: ['utility'] }), inventory, false).words);
    expect(plan.bind.map((b) => b[2]).filter((p) => /libcuda\.so/.test(p!))).toEqual([]);
    expect(plan.link).toEqual([]);
    expect(plan.bind.map((b) => b[2])).toContain('/usr/bin/nvidia-smi');
  });
});
