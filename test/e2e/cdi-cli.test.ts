/** The shipped `nvidia-ctk cdi generate|list` against a mock root, as an admin runs them on a fresh host. */
import { execa } from 'execa';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { distBin } from '../helpers/dist.js';
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
