/** The shipped `nvidia-ctk cdi generate|list|transform root` against a mock root, as an admin runs them on a fresh host. */
import { execa } from 'execa';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { distBin, PACKAGE_ROOT } from '../helpers/dist.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
beforeAll(async () => (host = await makeGpuHost(2)));
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

test('generate --output into a spec directory that does not exist yet, then list it', async () => {
  const dir = join(host.dir, 'etc', 'cdi');
  expect(existsSync(dir)).toBe(false);
  await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(dir, 'nvidia.yaml')]);
  const spec = parse(readFileSync(join(dir, 'nvidia.yaml'), 'utf8'));
  expect(spec.kind).toBe('nvidia.com/gpu');
  const { stdout } = await execa(distBin('nvidia-ctk'), ['cdi', 'list', '--spec-dir', dir]);
  expect(stdout.split('\n')).toEqual(expect.arrayContaining(['nvidia.com/gpu=0', 'nvidia.com/gpu=1', 'nvidia.com/gpu=all', `nvidia.com/gpu=${host.topology.gpus[1].uuid}`]));
});

test("NVIDIA's own spec (nvidia-ctk 1.17.9, for the default mock root) moved with transform root to a fresh mock root: list --json has every GPU", async () => {
  const fixture = join(PACKAGE_ROOT, 'test', 'fixtures', 'nvidia', 'nvidia-ctk-1.17.9-cdi-mock8.yaml');
  const fresh = await makeGpuHost(8);
  try {
    const specDir = join(fresh.dir, 'cdi');
    const out = join(specDir, 'nvidia.yaml');
    await execa(distBin('nvidia-ctk'), ['cdi', 'transform', 'root', '--from', '/var/lib/nvidia-runtime/mock-driver', '--to', fresh.driverRoot, '--input', fixture, '--output', out]);
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const spec = parse(readFileSync(out, 'utf8'));
    for (const m of spec.containerEdits.mounts) expect(existsSync(m.hostPath)).toBe(true);
    for (const n of [...spec.containerEdits.deviceNodes, ...spec.devices.flatMap((d: { containerEdits: { deviceNodes: { hostPath: string }[] } }) => d.containerEdits.deviceNodes)]) {
      expect(existsSync(n.hostPath)).toBe(true);
    }
    const { stdout, stderr } = await execa(distBin('nvidia-ctk'), ['cdi', 'list', '--spec-dir', specDir, '--json']);
    expect(stderr).toBe('');
    const listed = JSON.parse(stdout);
    expect(listed.errors).toEqual([]);
    const names = listed.devices.map((d: { name: string }) => d.name);
    expect(names).toEqual(expect.arrayContaining([...Array.from({ length: 8 }, (_, i) => `nvidia.com/gpu=${i}`), 'nvidia.com/gpu=all']));
    expect(listed.devices.every((d: { file: string }) => d.file === out)).toBe(true);
    // Stdin to stdout gives the same spec.
    const piped = await execa(distBin('nvidia-ctk'), ['cdi', 'transform', 'root', '--from', '/var/lib/nvidia-runtime/mock-driver', '--to', fresh.driverRoot], { input: readFileSync(fixture, 'utf8') });
    expect(parse(piped.stdout)).toEqual(spec);
  } finally {
    rmSync(fresh.dir, { recursive: true, force: true });
  }
});
