/**
 * nvidia-runtime with real runc and the mock driver root: what the container sees, and what happens on bad input.
 */
import { execa } from 'execa';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeCreate, runtimeRun, writeConfig, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let busybox: string;
let glibc: string;
const V = '550.54.15';

beforeAll(async () => {
  host = await makeGpuHost(4);
  busybox = makeBusyboxRootfs(join(host.dir, 'busybox'));
  glibc = await makeGlibcRootfs(join(host.dir, 'glibc'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const devLines = (out: string) =>
  out.split('\n').filter((l) => /^c.* nvidia/.test(l)).map((l) => {
    const m = /(\d+),\s+(\d+) .* (\S+)$/.exec(l)!;
    return `${m[3]} ${m[1]}:${m[2]}`;
  });

describe('a GPU container (NVIDIA_VISIBLE_DEVICES=1)', () => {
  let out: string;
  let bundle: string;
  beforeAll(async () => {
    bundle = await makeBundle(host, glibc, {
      env: ['NVIDIA_VISIBLE_DEVICES=1'],
      args: ['sh', '-c', 'ls -l /dev; echo ---; nvidia-smi -L; echo ---; dlopen-probe libcuda.so.1; dlopen-probe libnvidia-ml.so.1; echo ---; ldconfig -p | grep -E "libcuda|libnvidia-ml"; echo ---; ls /usr/lib/x86_64-linux-gnu; echo ---; env'],
    });
    const r = await runtimeRun(host, bundle);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    out = r.stdout;
  });

  test('gets exactly nvidia1, the control nodes and uvm, with the host major:minor', () => {
    const uvm = host.topology; // uvm major of the mock is 508
    expect(uvm).toBeDefined();
    expect(devLines(out.split('---')[0]).sort()).toEqual(['nvidia-uvm 508:0', 'nvidia-uvm-tools 508:1', 'nvidia1 195:1', 'nvidiactl 195:255']);
  });

  test('the mock nvidia-smi sees only GPU 1', () => {
    const smi = out.split('---')[1].trim();
    expect(smi).toBe(`GPU 0: ${host.topology.gpus[1].name} (UUID: ${host.topology.gpus[1].uuid})`);
  });

  test('dlopen of libcuda.so.1 and libnvidia-ml.so.1 works from a glibc program; ldconfig -p lists them', () => {
    const sections = out.split('---');
    expect(sections[2]).toContain('dlopen libcuda.so.1: OK');
    expect(sections[2]).toContain('dlopen libnvidia-ml.so.1: OK');
    expect(sections[3]).toMatch(/libcuda\.so\.1 .*=> \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
    expect(sections[3]).toMatch(/libcuda\.so .*=> \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so$/m);
  });

  test('compute and utility libraries only', () => {
    const libs = out.split('---')[4];
    expect(libs).toContain(`libcuda.so.${V}`);
    expect(libs).toContain(`libnvidia-ml.so.${V}`);
    expect(libs).toContain(`libnvidia-ptxjitcompiler.so.${V}`);
    expect(libs).not.toContain('libnvidia-encode');
    expect(libs).not.toContain('libGLX_nvidia');
  });

  test('NVIDIA_VISIBLE_DEVICES is replaced by what was granted, once', () => {
    const env = out.split('---')[5].split('\n').filter((l) => l.startsWith('NVIDIA_VISIBLE_DEVICES='));
    expect(env).toEqual([`NVIDIA_VISIBLE_DEVICES=${host.topology.gpus[1].uuid}`]);
  });

  test('the rewritten config.json: read-only private binds from host paths, one hook with explicit env and timeout', () => {
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    const lib = spec.mounts.find((m: { destination: string }) => m.destination === `/usr/lib/x86_64-linux-gnu/libcuda.so.${V}`);
    expect(lib).toEqual({
      destination: `/usr/lib/x86_64-linux-gnu/libcuda.so.${V}`,
      type: 'bind',
      source: join(host.driverRoot, `usr/lib/x86_64-linux-gnu/libcuda.so.${V}`),
      options: ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'],
    });
    expect(spec.hooks.createContainer).toHaveLength(1);
    const hook = spec.hooks.createContainer[0];
    expect(hook.path).toBe(distBin('nvidia-runtime-hook'));
    expect(hook.env).toEqual(['PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(hook.timeout).toBeGreaterThan(0);
    const rules = spec.linux.resources.devices.filter((r: { allow: boolean; major?: number }) => r.allow && r.major === 195);
    expect(rules.map((r: { minor: number }) => r.minor).sort()).toEqual([1, 255]);
  });

  test('a second create on the same bundle changes nothing', async () => {
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeRun(host, bundle);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
  });
});

describe('what NVIDIA_VISIBLE_DEVICES means', () => {
  let fresh = 0;
  const run = async (env: string[]) => {
    // A fresh rootfs each time: runc leaves the bind-mount targets it created behind in the rootfs.
    const rootfs = makeBusyboxRootfs(join(host.dir, `fresh-${++fresh}`));
    const bundle = await makeBundle(host, rootfs, { env, args: ['sh', '-c', 'ls -l /dev; echo ---; ls /usr/lib/x86_64-linux-gnu 2>&1; true'] });
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeRun(host, bundle);
    expect(r.exitCode).toBe(0);
    return { r, before, after: readFileSync(join(bundle, 'config.json'), 'utf8'), devices: devLines(r.stdout.split('---')[0]) };
  };

  test.each([[[]], [['NVIDIA_VISIBLE_DEVICES=void']], [['NVIDIA_VISIBLE_DEVICES=']], [['NVIDIA_DRIVER_CAPABILITIES=bogus']]])(
    '%j: not a GPU container, config.json byte-identical',
    async (env) => {
      const { before, after, devices, r } = await run(env);
      expect(after).toBe(before);
      expect(devices).toEqual([]);
      expect(r.stdout).not.toContain('libcuda');
    },
  );

  test('none: driver files and control nodes, no GPU', async () => {
    const { devices, r } = await run(['NVIDIA_VISIBLE_DEVICES=none']);
    expect(devices.sort()).toEqual(['nvidia-uvm 508:0', 'nvidia-uvm-tools 508:1', 'nvidiactl 195:255']);
    expect(r.stdout).toContain(`libcuda.so.${V}`);
  });

  test('all, by UUID and with duplicates', async () => {
    expect((await run(['NVIDIA_VISIBLE_DEVICES=all'])).devices.filter((d) => /^nvidia\d/.test(d))).toHaveLength(4);
    const uuid = host.topology.gpus[2].uuid;
    expect((await run([`NVIDIA_VISIBLE_DEVICES=${uuid},2,2`])).devices.filter((d) => /^nvidia\d/.test(d))).toEqual(['nvidia2 195:2']);
  });

  test('capabilities select the libraries', async () => {
    const video = await run(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=video']);
    expect(video.r.stdout).toContain('libnvidia-encode.so');
    const graphics = await run(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=graphics,display']);
    expect(graphics.r.stdout).toContain('libGLX_nvidia.so');
    expect(graphics.devices).toContain('nvidia-modeset 195:254');
    expect(graphics.r.stdout).not.toContain('libcuda.so');
    const compat32 = await run(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=compute,compat32']);
    expect(compat32.r.exitCode).toBe(0);
    const spec = JSON.parse(compat32.after);
    expect(spec.mounts.map((m: { destination: string }) => m.destination)).toContain(`/usr/lib/i386-linux-gnu/libcuda.so.${V}`);
  });

  test('legacy CUDA image (CUDA_VERSION, no NVIDIA_VISIBLE_DEVICES) gets all GPUs', async () => {
    expect((await run(['CUDA_VERSION=12.2.0'])).devices.filter((d) => /^nvidia\d/.test(d))).toHaveLength(4);
  });
});

describe('bad input: one clear line, config.json unchanged, runc not run', () => {
  const create = async (env: string[], runtimeEnv: Record<string, string> = {}, mutate?: (bundle: string) => void) => {
    const bundle = await makeBundle(host, busybox, { env, args: ['true'] });
    mutate?.(bundle);
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeCreate(host, bundle, runtimeEnv);
    expect(r.exitCode).not.toBe(0);
    expect(r.containerCreated).toBe(false);
    expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const log = readFileSync(join(bundle, 'log.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.at(-1).level).toBe('error');
    expect(log.at(-1).msg).toBe(r.stderr.trim());
    return r.stderr;
  };

  test('unknown device lists the devices that exist', async () => {
    const err = await create(['NVIDIA_VISIBLE_DEVICES=7']);
    expect(err).toMatch(/^nvidia-runtime: unknown device "7"/);
    expect(err).toContain(host.topology.gpus[0].uuid);
  });

  test('bad capability', async () => {
    expect(await create(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=compute,bogus'])).toMatch(/NVIDIA_DRIVER_CAPABILITIES: unsupported capability "bogus"/);
  });

  test('unmet NVIDIA_REQUIRE_CUDA names the requirement and what the host has', async () => {
    const err = await create(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=13.0']);
    expect(err).toMatch(/unsatisfied condition: cuda>=13\.0 \(host CUDA 12\.4, driver 550\.54\.15/);
  });

  test('malformed config.json', async () => {
    const err = await create([], {}, (b) => writeFileSync(join(b, 'config.json'), '{"ociVersion": "1.0.2", "process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]'));
    expect(err).toMatch(/^nvidia-runtime: .*config\.json/);
  });

  test('missing runc', async () => {
    const cfg = join(host.dir, 'norunc.toml');
    writeConfig(cfg, host.driverRoot, '');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('[nvidia-container-runtime]', '[nvidia-container-runtime]\nruntimes = ["/nonexistent/runc"]'));
    const bundle = await makeBundle(host, busybox, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args: ['true'] });
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeCreate(host, bundle, { NVIDIA_CTK_CONFIG_FILE_PATH: cfg });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/runc|runtime/);
    expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
  });

  test('unreadable driver root', async () => {
    const cfg = join(host.dir, 'noroot.toml');
    writeConfig(cfg, '/nonexistent/driver');
    expect(await create(['NVIDIA_VISIBLE_DEVICES=0'], { NVIDIA_CTK_CONFIG_FILE_PATH: cfg })).toMatch(/driver root \/nonexistent\/driver does not exist/);
  });
});

describe('privilege policy (accept-nvidia-visible-devices-envvar-when-unprivileged = false)', () => {
  let strict: GpuHost;
  beforeAll(() => {
    strict = { ...host, configFile: join(host.dir, 'strict.toml') };
    writeConfig(strict.configFile, host.driverRoot, 'accept-nvidia-visible-devices-envvar-when-unprivileged = false\naccept-nvidia-visible-devices-as-volume-mounts = true');
  });
  const gpus = (out: string) => devLines(out).filter((d) => /^nvidia\d/.test(d));

  test('an unprivileged container asking through the env gets nothing', async () => {
    const bundle = await makeBundle(strict, busybox, { env: ['NVIDIA_VISIBLE_DEVICES=all'], args: ['ls', '-l', '/dev'] });
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeRun(strict, bundle);
    expect(r.exitCode).toBe(0);
    expect(gpus(r.stdout)).toEqual([]);
    expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
  });

  test('CAP_SYS_ADMIN in the bounding set makes the env count', async () => {
    const caps = ['CAP_SYS_ADMIN', 'CAP_KILL', 'CAP_AUDIT_WRITE', 'CAP_NET_BIND_SERVICE'];
    const bundle = await makeBundle(strict, busybox, { env: ['NVIDIA_VISIBLE_DEVICES=3'], args: ['ls', '-l', '/dev'], capabilities: caps });
    const r = await runtimeRun(strict, bundle);
    expect(gpus(r.stdout)).toEqual(['nvidia3 195:3']);
  });

  test('a device-plugin volume mount grants the GPU to an unprivileged container', async () => {
    const bundle = await makeBundle(strict, busybox, { env: ['NVIDIA_VISIBLE_DEVICES=all'], args: ['ls', '-l', '/dev'] });
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    spec.mounts.push({ destination: '/var/run/nvidia-container-devices/2', type: 'bind', source: '/dev/null', options: ['rbind', 'ro'] });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    const r = await runtimeRun(strict, bundle);
    expect(gpus(r.stdout)).toEqual(['nvidia2 195:2']);
  });
});

describe('pass-through', () => {
  test('state output is byte-identical to runc, and create of a non-GPU bundle leaves it untouched', async () => {
    const bundle = await makeBundle(host, busybox, { args: ['sleep', '30'] });
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const id = `pt-${process.pid}`;
    const env = { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile };
    await execa(distBin('nvidia-runtime'), ['--root', host.runcRoot, 'create', '--bundle', bundle, id], { env, stdio: 'ignore' });
    try {
      const ours = await execa(distBin('nvidia-runtime'), ['--root', host.runcRoot, 'state', id], { env });
      const theirs = await execa('runc', ['--root', host.runcRoot, 'state', id]);
      expect(ours.stdout).toBe(theirs.stdout);
      expect(JSON.parse(ours.stdout).status).toBe('created');
      expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
    } finally {
      await execa('runc', ['--root', host.runcRoot, 'delete', '--force', id], { reject: false });
    }
  });
});
