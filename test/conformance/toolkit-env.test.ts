/**
 * Conformance with NVIDIA Container Toolkit v1.17.9's documented container interface (../shared/docs/PEER.md §3.8,
 * its sources `internal/config/image/*.go`, the hook's `container_config.go`, `internal/modifier/cdi.go`), transcribed
 * as input → expected facts. Each case runs through the shipped `nvidia-runtime create` with a spy runc (which records
 * the config.json it was handed) and through `nvidia-ctk explain --json`; both must say the same thing. Where we
 * deliberately differ, the case says why, and docs/configuration.md lists it ("Differences from NVIDIA's toolkit").
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
let spy: string;
let specDir: string;
let n = 0;

beforeAll(async () => {
  host = await makeGpuHost(4);
  rootfs = makeBusyboxRootfs(join(host.dir, 'rootfs'));
  spy = join(host.dir, 'spy-runc');
  // Records what runc would read: the bundle's config.json after the runtime's edits.
  writeFileSync(spy, '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --bundle ] && cp "$2/config.json" "$2/seen.json"; shift; done\nexit 0\n', { mode: 0o755 });
  specDir = join(host.dir, 'cdi');
  mkdirSync(specDir);
  await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(specDir, 'nvidia.yaml')]);
}, 120_000);
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

interface Case {
  /** What the toolkit does, in its documentation's words, and where it is stated. */
  fact: string;
  env: string[];
  toml?: string;
  privileged?: boolean;
  mounts?: { destination: string; source: string }[];
  annotations?: Record<string, string>;
  /** GPU nodes the container gets; [] = driver files and control nodes only; 'untouched' = config.json unchanged. */
  want: string[] | 'untouched' | RegExp;
  /** Set where we deliberately differ from v1.17.9: why. */
  differs?: string;
  /** IMEX channel nodes the container gets (default none). */
  imex?: number;
}

const SECURE = 'accept-nvidia-visible-devices-envvar-when-unprivileged = false\naccept-nvidia-visible-devices-as-volume-mounts = true\n';
const devNull = (id: string) => ({ destination: `/var/run/nvidia-container-devices/${id}`, source: '/dev/null' });

const CASES: Case[] = [
  { fact: 'NVD unset → void: not a GPU container (§3.8)', env: [], want: 'untouched' },
  { fact: 'NVD empty → not a GPU container', env: ['NVIDIA_VISIBLE_DEVICES='], want: 'untouched' },
  { fact: 'NVD=void → not a GPU container', env: ['NVIDIA_VISIBLE_DEVICES=void'], want: 'untouched' },
  { fact: 'any token void → not a GPU container', env: ['NVIDIA_VISIBLE_DEVICES=0,void'], want: 'untouched' },
  { fact: 'NVD=all → every GPU', env: ['NVIDIA_VISIBLE_DEVICES=all'], want: ['nvidia0', 'nvidia1', 'nvidia2', 'nvidia3'] },
  { fact: 'NVD=none → driver files and control nodes, no GPU', env: ['NVIDIA_VISIBLE_DEVICES=none'], want: [] },
  { fact: 'indices, comma list, entries trimmed', env: ['NVIDIA_VISIBLE_DEVICES= 1 , 3 '], want: ['nvidia1', 'nvidia3'] },
  {
    fact: 'duplicates: the toolkit returns ["", "0"] and passes --device=,0 (a bug)', env: ['NVIDIA_VISIBLE_DEVICES=0,0'], want: ['nvidia0'],
    differs: 'duplicates collapse to one device',
  },
  { fact: 'an unknown device fails the container', env: ['NVIDIA_VISIBLE_DEVICES=7'], want: /unknown device "7"/ },
  { fact: 'legacy image: CUDA_VERSION without NVIDIA_REQUIRE_CUDA → all GPUs', env: ['CUDA_VERSION=12.2.0'], want: ['nvidia0', 'nvidia1', 'nvidia2', 'nvidia3'] },
  { fact: 'legacy image: its cuda>=X.Y requirement is checked (mock CUDA 12.4)', env: ['CUDA_VERSION=12.9.0'], want: /unsatisfied condition: cuda>=12\.9/ },
  { fact: 'NVIDIA_REQUIRE_CUDA set → not a legacy image: NVD unset stays void', env: ['CUDA_VERSION=12.2.0', 'NVIDIA_REQUIRE_CUDA=cuda>=12.0'], want: 'untouched' },
  { fact: 'NVIDIA_DISABLE_REQUIRE (strconv.ParseBool) disables requirements', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=99', 'NVIDIA_DISABLE_REQUIRE=t'], want: ['nvidia0'] },
  { fact: 'config disable-require = true disables requirements', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=99'], toml: 'disable-require = true\n', want: ['nvidia0'] },
  { fact: 'requirements: alternatives by space, terms by comma; the first satisfied wins', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=11.6 foo=bar'], want: ['nvidia0'] },
  { fact: 'NVIDIA_REQUIRE_JETPACK is not a requirement', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_JETPACK=csv-mounts=all'], want: ['nvidia0'] },
  { fact: 'an unsupported capability fails the container', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=compute,frob'], want: /unsupported capability "frob"/ },
  { fact: 'MIG config/monitor in an unprivileged container fails it', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_MIG_CONFIG_DEVICES=all'], want: /cannot set NVIDIA_MIG_CONFIG_DEVICES in a non-privileged container/ },
  { fact: 'unprivileged + accept-envvar-when-unprivileged=false → NVD ignored', env: ['NVIDIA_VISIBLE_DEVICES=all'], toml: SECURE, want: 'untouched' },
  { fact: 'privileged (CAP_SYS_ADMIN in bounding) → NVD honoured even so', env: ['NVIDIA_VISIBLE_DEVICES=2'], toml: SECURE, privileged: true, want: ['nvidia2'] },
  { fact: 'volume mounts of /dev/null under /var/run/nvidia-container-devices take precedence over NVD', env: ['NVIDIA_VISIBLE_DEVICES=all'], toml: SECURE, mounts: [devNull('1')], want: ['nvidia1'] },
  { fact: 'volume mounts count only when accepted', env: [], mounts: [devNull('1')], want: 'untouched' },
  { fact: 'volume mounts count only with source /dev/null', env: [], toml: SECURE, mounts: [{ destination: '/var/run/nvidia-container-devices/1', source: '/tmp' }], want: 'untouched' },
  { fact: 'swarm-resource names replace NVD (legacy hook)', env: ['NVIDIA_VISIBLE_DEVICES=all', 'DOCKER_RESOURCE_GPU=3'], toml: 'swarm-resource = "DOCKER_RESOURCE_GPU"\n', want: ['nvidia3'] },
  { fact: 'fully-qualified CDI names in NVD → auto mode resolves to cdi', env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=2'], want: ['nvidia2'] },
  { fact: 'mode = "cdi": bare ids get default-kind', env: ['NVIDIA_VISIBLE_DEVICES=1'], toml: '[nvidia-container-runtime]\nmode = "cdi"\n', want: ['nvidia1'] },
  {
    fact: 'CDI annotations: in v1.17.9 they do not influence auto mode (HEAD: annotations > mounts > env in every mode)',
    env: [], annotations: { 'cdi.k8s.io/gpu': 'nvidia.com/gpu=3' }, want: ['nvidia3'],
    differs: 'annotations are read in auto mode too, as in the toolkit\'s HEAD',
  },
  { fact: 'an unqualified CDI annotation value is an error (the toolkit: invalid device name "1" in annotation "cdi.k8s.io/x")', env: [], annotations: { 'cdi.k8s.io/x': '1' }, want: /annotation "cdi\.k8s\.io\/x": "1" is not a fully-qualified CDI device name/ },
  {
    fact: 'NVD=none in cdi mode: v1.17.9 makes it nvidia.com/gpu= and fails (a bug; HEAD maps it to nvidia.com/gpu=none)',
    env: ['NVIDIA_VISIBLE_DEVICES=none'], toml: '[nvidia-container-runtime]\nmode = "cdi"\n', want: /unresolvable CDI devices: nvidia\.com\/gpu=none/,
    differs: 'maps to nvidia.com/gpu=none as HEAD does; our generated specs have no none device yet, so it fails with that name',
  },
  { fact: 'NVIDIA_IMEX_CHANNELS=0,1 → those channel nodes (--imex-channel=)', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=0,1'], want: ['nvidia0'], imex: 2 },
  { fact: 'NVIDIA_IMEX_CHANNELS=all is dropped (ImexChannelsFromEnvVar returns nil)', env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=all'], want: ['nvidia0'] },
  { fact: 'NVIDIA_IMEX_CHANNELS in cdi mode is ignored (v1.17.9)', env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0', 'NVIDIA_IMEX_CHANNELS=1'], want: ['nvidia0'] },
  { fact: 'mode = "legacy": CDI names are refused', env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0'], toml: '[nvidia-container-runtime]\nmode = "legacy"\n', want: /cannot be used in mode = "legacy"/ },
];

function configFor(c: Case): string {
  const file = join(host.dir, `conf-${++n}.toml`);
  const [top, tables] = (c.toml ?? '').includes('[') ? [c.toml!.slice(0, c.toml!.indexOf('[')), c.toml!.slice(c.toml!.indexOf('['))] : [c.toml ?? '', ''];
  const runtimeTable = tables.includes('[nvidia-container-runtime]') ? tables.replace('[nvidia-container-runtime]\n', `[nvidia-container-runtime]\nruntimes = ["${spy}"]\n`) : `[nvidia-container-runtime]\nruntimes = ["${spy}"]\n${tables}`;
  writeFileSync(file, `${top}[nvidia-container-cli]\nroot = "${host.driverRoot}"\n${runtimeTable}[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`);
  return file;
}

async function bundleFor(c: Case): Promise<string> {
  const b = await makeBundle(host, rootfs, { env: c.env, args: ['true'], ...(c.privileged ? { capabilities: ['CAP_SYS_ADMIN', 'CAP_KILL'] } : {}) });
  const file = join(b, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  for (const m of c.mounts ?? []) spec.mounts.push({ ...m, type: 'bind', options: ['bind', 'ro'] });
  if (c.annotations) spec.annotations = c.annotations;
  if (!c.privileged) for (const set of Object.keys(spec.process.capabilities)) spec.process.capabilities[set] = ['CAP_KILL'];
  writeFileSync(file, JSON.stringify(spec));
  return b;
}

const gpuNodes = (spec: { linux?: { devices?: { path: string }[] } }) =>
  (spec.linux?.devices ?? []).map((d) => d.path.replace('/dev/', '')).filter((p) => /^nvidia\d+$/.test(p)).sort();

test.each(CASES.map((c) => [c.fact, c] as const))('%s', async (_, c) => {
  const config = configFor(c);
  const bundle = await bundleFor(c);
  const before = readFileSync(join(bundle, 'config.json'), 'utf8');
  const explain = JSON.parse((await execa(distBin('nvidia-ctk'), ['explain', '--json', '--bundle', bundle], { env: { NVIDIA_CTK_CONFIG_FILE_PATH: config }, reject: false })).stdout);
  const r = await execa(distBin('nvidia-runtime'), ['--root', host.runcRoot, 'create', '--bundle', bundle, `conf-${n}`], { env: { NVIDIA_CTK_CONFIG_FILE_PATH: config }, reject: false });
  if (c.want instanceof RegExp) {
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(c.want);
    expect(explain.wouldSucceed).toBe(false);
    expect(explain.error).toMatch(c.want);
    return;
  }
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  const seen = readFileSync(join(bundle, 'seen.json'), 'utf8');
  expect(explain.wouldSucceed).toBe(true);
  if (c.want === 'untouched') {
    expect(seen).toBe(before);
    expect(explain.gpuContainer).toBe(false);
    return;
  }
  const spec = JSON.parse(seen);
  expect(gpuNodes(spec)).toEqual(c.want);
  expect(spec.linux.devices.map((d: { path: string }) => d.path)).toContain('/dev/nvidiactl');
  expect(spec.linux.devices.filter((d: { path: string }) => d.path.includes('imex')).length).toBe(c.imex ?? 0);
  expect(explain.gpuContainer).toBe(true);
  if (explain.cdiDevices.length === 0) expect(explain.devices.map((d: { minor: number }) => `nvidia${d.minor}`).sort()).toEqual(c.want);
});

test('every deliberate difference is listed in docs/configuration.md', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  for (const c of CASES.filter((x) => x.differs)) expect(doc).toContain(c.differs);
});
