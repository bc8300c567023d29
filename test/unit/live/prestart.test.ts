/**
 * The prestart hook's decisions (src/live/prestart.ts): the OCI state on stdin, whether the spec was already
 * injected, and the `nvidia-container-cli configure` argv it runs, checked against what NVIDIA's legacy hook was
 * observed to exec for the same container (../shared/docs/PEER.md, "Observed behaviour matrix", the column
 * "legacy hook → nvidia-container-cli argv (default cfg)"). The request is read from a real config.json by the
 * runtime's own reader (runtime/plan.ts requestOfSpec) with the default config.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import type { FrozenRuntimeConfig } from '../../../src/config/schema.js';
import { alreadyInjected, configureArgv, decidePrestart, parseState } from '../../../src/live/prestart.js';
import { readSpecFile, type SpecFile } from '../../../src/oci/spec-file.js';
import { requestOfSpec } from '../../../src/runtime/plan.js';
import type { DeviceRequest } from '../../../src/request/types.js';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { thrown } from '../../helpers/errors.js';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-prestart-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The default config, as the hook loads it when no config.toml exists. */
const DEFAULT: FrozenRuntimeConfig = loadConfig({
  env: {},
  readFile: () => {
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  },
});

/** Docker's default capability set (unprivileged), and with CAP_SYS_ADMIN (--privileged has it). */
const DOCKER_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

interface Facts {
  env?: string[];
  privileged?: boolean;
  mounts?: Array<{ destination: string; source: string }>;
  annotations?: Record<string, string>;
  hooks?: Record<string, Array<{ path: string; args?: string[] }>>;
  devices?: Array<{ path: string; type: string; major: number; minor: number }>;
}

/** A bundle's config.json as docker writes it (runc spec shape), read back by the runtime's strict reader. */
function specFile(f: Facts): SpecFile {
  const caps = f.privileged ? [...DOCKER_CAPS, 'CAP_SYS_ADMIN'] : DOCKER_CAPS;
  const spec = {
    ociVersion: '1.2.0',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['sh'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=c0ffee', ...(f.env ?? [])], cwd: '/', capabilities: { bounding: caps, effective: caps, permitted: caps } },
    root: { path: 'rootfs' },
    hostname: 'c0ffee',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/etc/hosts', type: 'bind', source: '/var/lib/docker/containers/c0ffee/hosts', options: ['rbind', 'rprivate'] },
      ...(f.mounts ?? []).map((m) => ({ ...m, type: 'bind', options: ['rbind', 'ro', 'rprivate'] })),
    ],
    hooks: f.hooks ?? { prestart: [{ path: '/usr/bin/nvidia-container-runtime-hook', args: ['/usr/bin/nvidia-container-runtime-hook', 'prestart'] }] },
    ...(f.annotations ? { annotations: f.annotations } : {}),
    linux: { namespaces: [{ type: 'mount' }, { type: 'pid' }], ...(f.devices ? { devices: f.devices } : {}) },
  };
  const file = join(dir, `config-${++n}.json`);
  writeFileSync(file, JSON.stringify(spec));
  return readSpecFile(file);
}

const requestOf = (f: Facts, config = DEFAULT): DeviceRequest => requestOfSpec(specFile(f), config);
const argvOf = (f: Facts, config = DEFAULT): string[] => configureArgv(requestOf(f, config), config, 4242, '/var/lib/docker/overlay2/x/merged');

/* ---- parseState ---------------------------------------------------------------------------------------------- */

describe('parseState', () => {
  it('runc\'s state: bundle and pid', () => {
    expect(parseState('{"ociVersion":"1.2.0","id":"c0ffee","status":"created","pid":4242,"bundle":"/run/containerd/io.containerd.runtime.v2.task/moby/c0ffee","annotations":{}}')).toEqual({
      pid: 4242,
      bundle: '/run/containerd/io.containerd.runtime.v2.task/moby/c0ffee',
    });
  });

  it('pre-17.06 Docker\'s bundlePath', () => {
    expect(parseState('{"pid":7,"bundlePath":"/var/run/docker/libcontainerd/c0ffee"}')).toEqual({ pid: 7, bundle: '/var/run/docker/libcontainerd/c0ffee' });
  });

  it('bundle wins over bundlePath', () => {
    expect(parseState('{"pid":7,"bundle":"/a","bundlePath":"/b"}').bundle).toBe('/a');
  });

  it.each<[string, string, RegExp]>([
    ['missing pid', '{"bundle":"/b"}', /no "pid"/],
    ['pid 0', '{"bundle":"/b","pid":0}', /no "pid"/],
    ['negative pid', '{"bundle":"/b","pid":-3}', /no "pid"/],
    ['fractional pid', '{"bundle":"/b","pid":1.5}', /no "pid"/],
    ['string pid', '{"bundle":"/b","pid":"42"}', /no "pid"/],
    ['relative bundle', '{"bundle":"run/b","pid":42}', /no absolute "bundle"/],
    ['no bundle at all', '{"pid":42}', /no absolute "bundle"/],
    ['bundle not a string', '{"bundle":["/b"],"pid":42}', /no absolute "bundle"/],
    ['null', 'null', /no absolute "bundle"/],
    ['not JSON', 'pid=42 bundle=/b', /not JSON/],
    ['empty stdin', '', /not JSON/],
  ])('%s → INPUT error', (_, text, message) => {
    const e = thrown(() => parseState(text));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(message);
    expect(e.fix).toMatch(/prestart/);
  });
});

/* ---- alreadyInjected / decidePrestart -------------------------------------------------------------------------- */

describe('alreadyInjected', () => {
  it('a createContainer hook whose path is .../nvidia-runtime-hook (ours): the reason names it', () => {
    const f = specFile({ env: ['NVIDIA_VISIBLE_DEVICES=all'], hooks: { createContainer: [{ path: '/x/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'update-ldcache'] }] } });
    expect(alreadyInjected(f.spec)).toMatch(/nvidia-runtime-hook hook/);
  });

  it('a hook whose args[0] is nvidia-cdi-hook (NVIDIA\'s CDI spec), whatever its path', () => {
    const f = specFile({ hooks: { createContainer: [{ path: '/usr/local/bin/hook-wrapper', args: ['nvidia-cdi-hook', 'create-symlinks', '--link', 'a::b'] }] } });
    expect(alreadyInjected(f.spec)).toMatch(/hook-wrapper hook: nvidia-runtime or a CDI spec/);
  });

  it('a /dev/nvidia0 device alone (docker run --device) is not an injection: the driver files are still missing', () => {
    const f = specFile({ devices: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }] });
    expect(alreadyInjected(f.spec)).toBeUndefined();
  });

  it('docker\'s --gpus prestart hook (nvidia-container-runtime-hook) alone is not an injection: undefined', () => {
    expect(alreadyInjected(specFile({ env: ['NVIDIA_VISIBLE_DEVICES=all'] }).spec)).toBeUndefined();
    expect(alreadyInjected(specFile({ hooks: { prestart: [{ path: '/usr/bin/nvidia-container-toolkit', args: ['nvidia-container-toolkit', 'prestart'] }] } }).spec)).toBeUndefined();
  });

  it('other devices and other hooks are not an injection', () => {
    const f = specFile({ devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }], hooks: { prestart: [{ path: '/usr/libexec/oci/hooks.d/oci-systemd-hook' }], poststop: [{ path: '/bin/true' }] } });
    expect(alreadyInjected(f.spec)).toBeUndefined();
  });
});

describe('decidePrestart', () => {
  const STATE = { pid: 4242, bundle: '/b' };

  it('configure: the argv with --pid and the rootfs last', () => {
    const f = specFile({ env: ['NVIDIA_VISIBLE_DEVICES=1'] });
    const d = decidePrestart(f, requestOfSpec(f, DEFAULT), DEFAULT, STATE, '/b/rootfs');
    expect(d).toEqual({ kind: 'configure', argv: ['configure', '--ldconfig=@/sbin/ldconfig', '--cuda-compat-mode=ldconfig', '--device=1', '--compute', '--utility', '--pid=4242', '/b/rootfs'] });
  });

  it('skip: not a GPU container', () => {
    const f = specFile({ env: [] });
    expect(decidePrestart(f, requestOfSpec(f, DEFAULT), DEFAULT, STATE, '/b/rootfs')).toEqual({ kind: 'skip', reason: 'not a GPU container' });
  });

  it('skip: already injected (never both), even for a GPU request', () => {
    const f = specFile({ env: ['NVIDIA_VISIBLE_DEVICES=all'], hooks: { createContainer: [{ path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'update-ldcache'] }] } });
    const d = decidePrestart(f, requestOfSpec(f, DEFAULT), DEFAULT, STATE, '/b/rootfs');
    expect(d.kind).toBe('skip');
  });

  it('CDI devices: an INPUT error that points at --runtime=nvidia', () => {
    const f = specFile({ env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0'] });
    const e = thrown(() => decidePrestart(f, requestOfSpec(f, DEFAULT), DEFAULT, STATE, '/b/rootfs'));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain('nvidia.com/gpu=0');
    expect(e.fix).toContain('--runtime=nvidia');
  });

  it('config: root, no-cgroups and ldconfig reach the argv', () => {
    const config = parseConfig('[nvidia-container-cli]\nroot = "/run/nvidia/driver"\nno-cgroups = true\nldconfig = "@/sbin/ldconfig.real"\n', '/etc/nvidia-container-runtime/config.toml');
    expect(argvOf({ env: ['NVIDIA_VISIBLE_DEVICES=0'] }, config)).toEqual([
      '--root=/run/nvidia/driver', 'configure', '--ldconfig=@/sbin/ldconfig.real', '--cuda-compat-mode=ldconfig', '--no-cgroups', '--device=0', '--compute', '--utility', '--pid=4242', '/var/lib/docker/overlay2/x/merged',
    ]);
    const noLdconfig = parseConfig('[nvidia-container-cli]\nldconfig = ""\n', '/c.toml');
    expect(argvOf({ env: ['NVIDIA_VISIBLE_DEVICES=0'] }, noLdconfig).filter((a) => a.startsWith('--ldconfig'))).toEqual([]);
  });
});

/* ---- conformance with NVIDIA's hook ---------------------------------------------------------------------------- */

/** The flags of a configure argv that say what is injected (not --pid, the rootfs, --ldconfig or globals). */
interface Flags {
  device?: string;
  capabilities: string[];
  require: string[];
  migConfig?: string;
  migMonitor?: string;
  imexChannel?: string;
}

function flagsOf(args: readonly string[]): Flags {
  const out: Flags = { capabilities: [], require: [] };
  for (const a of args) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(a);
    if (!m) continue; // `configure`, the rootfs
    const [, name, value] = m as unknown as [string, string, string | undefined];
    if (name === 'device') out.device = value;
    else if (name === 'require') out.require.push(value!);
    else if (name === 'mig-config') out.migConfig = value;
    else if (name === 'mig-monitor') out.migMonitor = value;
    else if (name === 'imex-channel') out.imexChannel = value;
    else if (['compat32', 'compute', 'display', 'graphics', 'ngx', 'utility', 'video'].includes(name)) out.capabilities.push(name);
  }
  out.capabilities.sort();
  return out;
}

const UUID = 'GPU-11111111-2222-3333-4444-555555555555';
const MIG = 'MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const NVD = (v: string): string => `NVIDIA_VISIBLE_DEVICES=${v}`;

interface Row {
  /** The matrix's first column, verbatim. */
  row: string;
  /** The legacy hook column (default cfg), verbatim. */
  nvidia: string;
  facts: Facts;
  /**
   * Where we deliberately differ, why, and what we do instead: the argv we give ('cli: ...'), or the error the
   * request or decision throws (a RegExp on its message).
   */
  differs?: { why: string; ours: string | RegExp };
}

/* Transcribed from PEER.md "Observed behaviour matrix" (NVIDIA Container Toolkit v1.17.9 on a 2-GPU host). */
const MATRIX: Row[] = [
  { row: 'unset', nvidia: 'not a GPU container (exit 0)', facts: {} },
  { row: 'NVD=all', nvidia: 'cli: --device=all --compute --utility', facts: { env: [NVD('all')] } },
  { row: 'NVD=0', nvidia: 'cli: --device=0 --compute --utility', facts: { env: [NVD('0')] } },
  { row: 'NVD=0,1', nvidia: 'cli: --device=0,1 --compute --utility', facts: { env: [NVD('0,1')] } },
  {
    row: 'NVD=0,0 (dup)', nvidia: 'cli: --device=,0 --compute --utility', facts: { env: [NVD('0,0')] },
    differs: { why: 'NVIDIA\'s duplicate-entry bug (PEER §3.10.8) blanks the first entry; duplicates collapse to one device here', ours: 'cli: --device=0 --compute --utility' },
  },
  { row: 'NVD=<UUID>', nvidia: `cli: --device=${UUID} --compute --utility`, facts: { env: [NVD(UUID)] } },
  { row: 'NVD=0:1 (MIG idx)', nvidia: 'cli: --device=0:1 --compute --utility', facts: { env: [NVD('0:1')] } },
  { row: 'NVD=MIG-<uuid>', nvidia: `cli: --device=${MIG} --compute --utility`, facts: { env: [NVD(MIG)] } },
  { row: 'NVD=none', nvidia: 'cli: --compute --utility', facts: { env: [NVD('none')] } },
  { row: 'NVD=void', nvidia: 'not a GPU container (exit 0)', facts: { env: [NVD('void')] } },
  { row: 'NVD= (empty)', nvidia: 'not a GPU container (exit 0)', facts: { env: [NVD('')] } },
  ...(['nvidia.com/gpu=0', 'nvidia.com/gpu=all', 'nvidia.com/gpu=7', 'runtime.nvidia.com/gpu=all'] as const).map((name): Row => ({
    row: { 'nvidia.com/gpu=0': 'NVD=nvidia.com/gpu=0', 'nvidia.com/gpu=all': 'NVD=nvidia.com/gpu=all', 'nvidia.com/gpu=7': 'NVD=nvidia.com/gpu=7 (missing)', 'runtime.nvidia.com/gpu=all': 'NVD=runtime.nvidia.com/gpu=all (jit)' }[name],
    nvidia: `cli: --device=${name} --compute --utility`,
    facts: { env: [NVD(name)] },
    differs: {
      why: 'NVIDIA hands a CDI name to nvidia-container-cli, which has no CDI and fails the container there; in mode "auto" every-device-a-CDI-name is the CDI path, which the prestart hook refuses up front with a fix that names --runtime=nvidia',
      ours: new RegExp(`CDI devices \\(${name.replace(/[.=]/g, '\\$&')}\\) cannot be injected by the prestart hook`),
    },
  })),
  // Mixed: the direct path (mode.ts), so the argv is NVIDIA's; nvidia-container-cli configure then refuses the CDI
  // name (configure.test.ts: DEVICE).
  { row: 'NVD=0,nvidia.com/gpu=1 (mixed)', nvidia: 'cli: --device=0,nvidia.com/gpu=1 --compute --utility', facts: { env: [NVD('0,nvidia.com/gpu=1')] } },
  {
    row: 'annotation cdi.k8s.io/x=nvidia.com/gpu=1 + NVD=all', nvidia: 'cli: --device=all --compute --utility',
    facts: { env: [NVD('all')], annotations: { 'cdi.k8s.io/x': 'nvidia.com/gpu=1' } },
    differs: { why: 'CDI annotations are read in mode "auto" too (the toolkit\'s HEAD; toolkit-env.test.ts) and win over the env, so the request is CDI, which the hook does not inject', ours: /CDI devices \(nvidia\.com\/gpu=1\) cannot be injected by the prestart hook/ },
  },
  {
    row: 'annotation cdi.k8s.io/x=1 (unqualified)', nvidia: 'not a GPU container (exit 0)', facts: { annotations: { 'cdi.k8s.io/x': '1' } },
    differs: { why: 'annotations are read in auto mode, and an unqualified value is an error rather than silently no GPU', ours: /annotation "cdi\.k8s\.io\/x": "1" is not a fully-qualified CDI device name/ },
  },
  {
    row: 'CUDA_VERSION=11.2.1 only (legacy image)', nvidia: 'cli: --device=all --compat32 --compute --display --graphics --ngx --utility --video --require=cuda>=11.2',
    facts: { env: ['CUDA_VERSION=11.2.1'] },
  },
  { row: 'CUDA_VERSION + NVIDIA_REQUIRE_CUDA', nvidia: 'not a GPU container (exit 0)', facts: { env: ['CUDA_VERSION=11.2.1', 'NVIDIA_REQUIRE_CUDA=cuda>=11.0'] } },
  { row: 'NVD=all caps=all', nvidia: 'cli: --device=all --compat32 --compute --display --graphics --ngx --utility --video', facts: { env: [NVD('all'), 'NVIDIA_DRIVER_CAPABILITIES=all'] } },
  { row: 'NVD=all caps=compute,video,graphics', nvidia: 'cli: --device=all --compute --graphics --video', facts: { env: [NVD('all'), 'NVIDIA_DRIVER_CAPABILITIES=compute,video,graphics'] } },
  { row: 'NVD=all caps= (empty)', nvidia: 'cli: --device=all --compute --utility', facts: { env: [NVD('all'), 'NVIDIA_DRIVER_CAPABILITIES='] } },
  { row: 'NVD=all caps=bogus', nvidia: 'rc=1: unsupported capabilities found in \'bogus,compute\' (allowed \'compute\')', facts: { env: [NVD('all'), 'NVIDIA_DRIVER_CAPABILITIES=bogus'] } },
  {
    row: 'NVD=all REQUIRE_CUDA+REQUIRE_FOO', nvidia: 'cli: --device=all --compute --utility --require=cuda>=12.0 --require=arch=x86_64',
    facts: { env: [NVD('all'), 'NVIDIA_REQUIRE_CUDA=cuda>=12.0', 'NVIDIA_REQUIRE_FOO=arch=x86_64'] },
  },
  { row: '... + NVIDIA_DISABLE_REQUIRE=true', nvidia: 'cli: --device=all --compute --utility', facts: { env: [NVD('all'), 'NVIDIA_REQUIRE_CUDA=cuda>=12.0', 'NVIDIA_REQUIRE_FOO=arch=x86_64', 'NVIDIA_DISABLE_REQUIRE=true'] } },
  { row: 'NVD=all MIG_CONFIG=all (unpriv)', nvidia: 'rc=1: cannot set MIG_CONFIG_DEVICES in non privileged container', facts: { env: [NVD('all'), 'NVIDIA_MIG_CONFIG_DEVICES=all'] } },
  {
    row: 'NVD=all MIG_CONFIG=all MIG_MONITOR=all (priv)', nvidia: 'cli: --device=all --mig-config=all --mig-monitor=all --compute --utility',
    facts: { env: [NVD('all'), 'NVIDIA_MIG_CONFIG_DEVICES=all', 'NVIDIA_MIG_MONITOR_DEVICES=all'], privileged: true },
  },
  { row: 'NVD=all IMEX_CHANNELS=0,1', nvidia: 'cli: --device=all --imex-channel=0,1 --compute --utility', facts: { env: [NVD('all'), 'NVIDIA_IMEX_CHANNELS=0,1'] } },
  { row: 'DOCKER_RESOURCE_GPU=<UUID> + NVD=all', nvidia: 'cli: --device=all --compute --utility', facts: { env: [`DOCKER_RESOURCE_GPU=${UUID}`, NVD('all')] } },
  { row: 'NVD=all (privileged)', nvidia: 'cli: --device=all --compute --utility', facts: { env: [NVD('all')], privileged: true } },
  {
    row: 'mount /var/run/nvidia-container-devices/0 + NVD=all', nvidia: 'cli: --device=all --compute --utility',
    facts: { env: [NVD('all')], mounts: [{ destination: '/var/run/nvidia-container-devices/0', source: '/dev/null' }] },
  },
  { row: 'mount .../cdi/nvidia.com/gpu/1 (no env)', nvidia: 'not a GPU container (exit 0)', facts: { mounts: [{ destination: '/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/1', source: '/dev/null' }] } },
  { row: 'NVD=all NVIDIA_GDS=enabled NVIDIA_MOFED=enabled', nvidia: 'cli: --device=all --compute --utility', facts: { env: [NVD('all'), 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled'] } },
];

/** What the hook does for these facts, as text in the matrix's terms: `cli: <flags>`, or the error. */
function ourOutcome(f: Facts): { kind: 'cli'; argv: string[] } | { kind: 'skip' } | { kind: 'error'; message: string } {
  let d;
  try {
    const file = specFile(f);
    d = decidePrestart(file, requestOfSpec(file, DEFAULT), DEFAULT, { pid: 4242, bundle: dir }, '/rootfs');
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).name).toBe('NvrError');
    return { kind: 'error', message: (e as Error).message };
  }
  return d.kind === 'skip' ? { kind: 'skip' } : { kind: 'cli', argv: d.argv };
}

describe('conformance: our configure argv vs NVIDIA\'s legacy hook (PEER.md observed matrix, default cfg)', () => {
  const peer = join(PACKAGE_ROOT, '..', 'shared', 'docs', 'PEER.md');

  (existsSync(peer) ? it : it.skip)('the transcription matches PEER.md (first column and the legacy-hook column)', () => {
    const text = readFileSync(peer, 'utf8');
    const start = text.indexOf('## Observed behaviour matrix');
    expect(start).toBeGreaterThan(0);
    const table = text.slice(start).split('\n').filter((l) => l.startsWith('| ')).slice(1);
    const cells = new Map(table.map((l) => l.split('|').map((c) => c.trim())).map((c) => [c[1]!, c[5]!]));
    for (const r of MATRIX) expect([r.row, cells.get(r.row)]).toEqual([r.row, r.nvidia]);
    // every row of the table is covered
    expect([...cells.keys()].filter((k) => !MATRIX.some((r) => r.row === k))).toEqual([]);
  });

  const cliRows = MATRIX.filter((r) => r.nvidia.startsWith('cli: '));
  it.each(cliRows.map((r) => [r.row, r] as const))('%s', (_, r) => {
    const ours = ourOutcome(r.facts);
    const want = r.differs?.ours ?? r.nvidia;
    if (want instanceof RegExp) {
      expect(ours.kind).toBe('error');
      expect(ours.kind === 'error' && ours.message).toMatch(want);
      return;
    }
    expect(ours.kind).toBe('cli');
    if (ours.kind !== 'cli') return;
    // The same command, the hook's own fixed arguments around it.
    expect(ours.argv.slice(0, 3)).toEqual(['configure', '--ldconfig=@/sbin/ldconfig', '--cuda-compat-mode=ldconfig']);
    expect(ours.argv.slice(-2)).toEqual(['--pid=4242', '/rootfs']);
    const mine = flagsOf(ours.argv.slice(3, -2));
    const theirs = flagsOf(want.slice('cli: '.length).split(' '));
    expect(mine).toEqual(theirs);
    // nothing else: every flag we pass is one of those compared
    expect(ours.argv.slice(3, -2).every((a) => /^--(device|require|mig-config|mig-monitor|imex-channel|compat32|compute|display|graphics|ngx|utility|video)(=|$)/.test(a))).toBe(true);
    if (r.differs) expect(flagsOf(r.nvidia.slice('cli: '.length).split(' '))).not.toEqual(mine);
  });

  const failRows = MATRIX.filter((r) => r.nvidia.startsWith('rc=1'));
  it.each(failRows.map((r) => [r.row, r] as const))('NVIDIA fails (rc=1), so does requestOfSpec: %s', (_, r) => {
    const e = thrown(() => requestOf(r.facts));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(r.row.includes('bogus') ? /unsupported capability "bogus"/ : /cannot set NVIDIA_MIG_CONFIG_DEVICES in a non-privileged container/);
  });

  const skipRows = MATRIX.filter((r) => r.nvidia.startsWith('not a GPU container'));
  it.each(skipRows.map((r) => [r.row, r] as const))('NVIDIA: not a GPU container; ours: %s', (_, r) => {
    const ours = ourOutcome(r.facts);
    if (r.differs) {
      expect(ours.kind).toBe('error');
      expect(ours.kind === 'error' && ours.message).toMatch(r.differs.ours as RegExp);
    } else {
      expect(ours).toEqual({ kind: 'skip' });
    }
  });

  it('every row is in exactly one of the three groups', () => {
    expect(cliRows.length + failRows.length + skipRows.length).toBe(MATRIX.length);
    expect(cliRows.length).toBeGreaterThanOrEqual(25);
  });
});
