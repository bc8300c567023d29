/**
 * dockerd hands the prestart hook its whole environment (moby: `Env: os.Environ()`). The launcher, under the hook's
 * names, gives Node only the allowlist: a NODE_OPTIONS preload set by the caller must never run. Through the built
 * binaries, with a real bundle and the OCI state on stdin.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, tempDir } from '../helpers/dist.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('hookenv');
  mkdirSync(join(dir, 'bundle', 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'bundle', 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { env: ['PATH=/bin'], args: ['true'], cwd: '/' }, root: { path: 'rootfs' } }));
  writeFileSync(join(dir, 'preload.cjs'), `require('fs').writeFileSync(${JSON.stringify(join(dir, 'ran'))}, 'x');\n`);
  writeFileSync(join(dir, 'config.toml'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test.each(['nvidia-container-runtime-hook', 'nvidia-container-toolkit'])('%s prestart: the caller\'s NODE_OPTIONS never reaches Node', async (name) => {
  const r = await execa(distBin(name), ['-debug', 'prestart'], {
    input: JSON.stringify({ ociVersion: '1.0.2', id: 'x', status: 'creating', pid: process.pid, bundle: join(dir, 'bundle') }),
    env: { NODE_OPTIONS: `--require ${join(dir, 'preload.cjs')}`, NVIDIA_CTK_CONFIG_FILE_PATH: join(dir, 'config.toml') },
    extendEnv: false,
    reject: false,
  });
  expect([r.exitCode, r.stderr]).toEqual([0, 'nvidia-container-runtime-hook: not a GPU container: nothing to do']);
  expect(existsSync(join(dir, 'ran'))).toBe(false);
  // The same preload does run when Node is started directly: the test can fail.
  await execa(process.execPath, ['-e', '0'], { env: { NODE_OPTIONS: `--require ${join(dir, 'preload.cjs')}` } });
  expect(existsSync(join(dir, 'ran'))).toBe(true);
  rmSync(join(dir, 'ran'));
});
