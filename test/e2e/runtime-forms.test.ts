/**
 * "A GPU request is never dropped" with real runc: every argv form, config.json spelling and config.toml form that
 * once made the native launcher skip the GPU either gives the container its GPU, or makes create fail with one
 * clear line and no container left behind.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
let specDir: string;
let n = 0;

beforeAll(async () => {
  host = await makeGpuHost(4);
  rootfs = makeBusyboxRootfs(join(host.dir, 'busybox'));
  specDir = join(host.dir, 'cdi');
  mkdirSync(specDir);
  await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(specDir, 'nvidia.yaml')]);
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

/** config.toml forms: the runtime reads them with a real TOML parser (the launcher reads none). */
const TOML = {
  plain: '[nvidia-container-runtime]\nruntimes = ["runc"]\n',
  quotedHeader: '["nvidia-container-runtime"]\nruntimes = ["runc"]\n',
  dottedKey: 'nvidia-container-runtime.runtimes = ["runc"]\n',
  multiLine: '[nvidia-container-runtime]\nruntimes = [\n  "runc",\n]\n',
  customPrefix: '[nvidia-container-runtime]\nruntimes = ["runc"]\n[nvidia-container-runtime.modes.cdi]\nannotation-prefixes = ["gpus.example.com/"]\n',
  swarm: '[nvidia-container-runtime]\nruntimes = ["runc"]\n',
};
/** Top-level keys, which TOML wants before the first table. */
const TOP: Partial<Record<keyof typeof TOML, string>> = { swarm: 'swarm-resource = "DOCKER_RESOURCE_GPU"\n' };

function configFor(form: keyof typeof TOML): string {
  const file = join(host.dir, `config-${++n}.toml`);
  writeFileSync(
    file,
    `${TOP[form] ?? ''}[nvidia-container-cli]\nroot = "${host.driverRoot}"\n${TOML[form]}` +
      (form === 'customPrefix' ? '' : '[nvidia-container-runtime.modes.cdi]\n') + `spec-dirs = ["${specDir}"]\n`,
  );
  return file;
}

const LIST_GPUS = ['sh', '-c', 'ls /dev | grep -E "^nvidia[0-9]+$"; exit 0'];

/** A bundle whose config.json asks for GPU 1 as `spelling` writes it (a text edit of the JSON). */
async function gpuBundle(spelling: (json: string) => string, env = ['NVIDIA_VISIBLE_DEVICES=1']): Promise<string> {
  const bundle = await makeBundle(host, rootfs, { env, args: LIST_GPUS });
  const file = join(bundle, 'config.json');
  writeFileSync(file, spelling(readFileSync(file, 'utf8')));
  return bundle;
}

async function runtime(argv: string[], config: string) {
  const id = argv[argv.indexOf('ID')] === 'ID' ? `f${++n}-${process.pid}` : '';
  const args = argv.map((a) => (a === 'ID' ? id : a));
  const r = await execa(distBin('nvidia-runtime'), ['--root', host.runcRoot, ...args], {
    reject: false, env: { NVIDIA_CTK_CONFIG_FILE_PATH: config }, stdin: 'ignore', cwd: host.dir,
  });
  const state = await execa('runc', ['--root', host.runcRoot, 'state', id], { reject: false });
  if (state.exitCode === 0) await execa('runc', ['--root', host.runcRoot, 'delete', '--force', id], { reject: false });
  return { ...r, containerLeft: state.exitCode === 0 && !args.includes('run') };
}

/** Twice: once to let Node write the launcher view, once more where the launcher could have taken the fast path. */
async function expectGpu1(argv: (b: string) => string[], bundle: () => Promise<string>, config: string): Promise<void> {
  for (let round = 0; round < 2; round++) {
    const r = await runtime(argv(await bundle()), config);
    expect([r.stderr, r.exitCode, r.stdout.trim()]).toEqual(['', 0, 'nvidia1']);
  }
}

const plain = (json: string) => json;

describe('argv forms runc accepts: the container has its GPU', () => {
  test.each([
    ['run ID --bundle B', (b: string) => ['run', 'ID', '--bundle', b]],
    ['run --pid-file P ID --bundle B', (b: string) => ['run', '--pid-file', join(b, 'pid'), 'ID', '--bundle', b]],
    ['run ID --no-pivot -b B', (b: string) => ['run', 'ID', '--no-pivot', '-b', b]],
    ['run -b=B ID', (b: string) => ['run', `-b=${b}`, 'ID']],
    ['--log L --log-format json run ID --bundle B', (b: string) => ['--log', join(b, 'log'), '--log-format', 'json', 'run', 'ID', '--bundle', b]],
  ])('%s', async (_, argv) => {
    await expectGpu1(argv, () => gpuBundle(plain), configFor('plain'));
  });
});

describe('argv forms runc 1.1 refuses: one clear line, no container', () => {
  test.each([
    ['--cgroup-manager disabled (crun\'s flag)', (b: string) => ['--cgroup-manager', 'disabled', 'create', '--bundle', b, 'ID'], /flag provided but not defined: -cgroup-manager/],
    ['--log-level debug (crun\'s flag)', (b: string) => ['--log-level', 'debug', 'create', '--bundle', b, 'ID'], /flag provided but not defined: -log-level/],
    ['create --config (runc >= 1.3)', (b: string) => ['create', '--config', 'config.json', '--bundle', b, 'ID'], /flag provided but not defined: -config/],
  ])('%s', async (_, argv, message) => {
    const r = await runtime(argv(await gpuBundle(plain)), configFor('plain'));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.containerLeft).toBe(false);
  });
});

describe('config.json spellings: the container has its GPU', () => {
  test.each([
    ['\\u004eVIDIA_VISIBLE_DEVICES', (j: string) => j.replace('"NVIDIA_VISIBLE_DEVICES=1"', '"\\u004eVIDIA_VISIBLE_DEVICES=1"')],
    ['NVIDIA\\u005fVISIBLE_DEVICES', (j: string) => j.replace('"NVIDIA_VISIBLE_DEVICES=1"', '"NVIDIA\\u005fVISIBLE_DEVICES=1"')],
  ])('%s', async (_, spelling) => {
    await expectGpu1((b) => ['run', '--bundle', b, 'ID'], () => gpuBundle(spelling), configFor('plain'));
  });

  test('a cdi.k8s.io annotation written with \\/ escapes', async () => {
    const annotate = (j: string) => {
      const spec = JSON.parse(j);
      spec.annotations = { 'cdi.k8s.io/gpu': 'nvidia.com/gpu=1' };
      return JSON.stringify(spec).replaceAll('/', '\\/');
    };
    await expectGpu1((b) => ['run', '--bundle', b, 'ID'], () => gpuBundle(annotate, []), configFor('plain'));
  });
});

describe('config.toml forms: the configured runc runs and the container has its GPU', () => {
  test.each(['quotedHeader', 'dottedKey', 'multiLine'] as const)('%s', async (form) => {
    const config = configFor(form);
    await expectGpu1((b) => ['run', '--bundle', b, 'ID'], () => gpuBundle(plain), config);
    const r = await runtime(['delete', 'no-such-container'], config); // every verb works with such a file
    expect(r.stderr).toMatch(/container does not exist/);
  });

  test('swarm-resource: Docker Swarm\'s DOCKER_RESOURCE_GPU (no built-in marker) selects the GPU', async () => {
    await expectGpu1((b) => ['run', '--bundle', b, 'ID'], () => gpuBundle(plain, ['DOCKER_RESOURCE_GPU=1']), configFor('swarm'));
  });

  test('a custom annotation prefix is seen by the launcher', async () => {
    const annotate = (j: string) => JSON.stringify({ ...JSON.parse(j), annotations: { 'gpus.example.com/gpu': 'nvidia.com/gpu=1' } });
    await expectGpu1((b) => ['run', '--bundle', b, 'ID'], () => gpuBundle(annotate, []), configFor('customPrefix'));
  });
});

describe('[nvidia-container-cli] ldconfig', () => {
  const withLdconfig = (value: string): string => {
    const file = join(host.dir, `config-${++n}.toml`);
    writeFileSync(file, `[nvidia-container-cli]\nroot = "${host.driverRoot}"\nldconfig = ${JSON.stringify(value)}\n`);
    return file;
  };

  test('"@/host/path": that host ldconfig is the one the hook runs', async () => {
    // A glibc rootfs, so that the hook runs ldconfig at all (it leaves images without ld.so.conf alone).
    const bundle = await makeBundle(host, await makeGlibcRootfs(join(host.dir, `glibc-${++n}`)), { env: ['NVIDIA_VISIBLE_DEVICES=1'], args: LIST_GPUS });
    const r = await runtime(['run', '--bundle', bundle, 'ID'], withLdconfig('@/sbin/ldconfig.custom'));
    // The hook refuses a path that does not exist, naming it: proof that it was handed the configured one.
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/ldconfig: cannot open \/sbin\/ldconfig\.custom on the host/);
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    expect(spec.hooks.createContainer[0].args).toEqual(expect.arrayContaining(['--ldconfig', '/sbin/ldconfig.custom']));
  });

  test('a container path is refused in one line (the image\'s ldconfig never runs as root), no container', async () => {
    const r = await runtime(['run', '--bundle', await gpuBundle(plain), 'ID'], withLdconfig('/sbin/ldconfig'));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^nvidia-runtime: \[nvidia-container-cli\] ldconfig = "\/sbin\/ldconfig" names an ldconfig inside the container.*use a host ldconfig: ldconfig = "@\/sbin\/ldconfig"/);
    expect(r.containerLeft).toBe(false);
  });
});
