/** The dry-run create: the sample spec, and the line for a grant or a refusal. */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { checkDryRun, dryRunCreate, SAMPLE_ENV, sampleSpec } from '../../../src/doctor/dry-run.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { NvrError } from '../../../src/errors.js';

test('the sample asks for every GPU with the default capabilities', () => {
  const spec = sampleSpec(SAMPLE_ENV) as { process: { env: string[] }; root: { path: string } };
  expect(spec.process.env).toEqual(expect.arrayContaining(['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility']));
  expect(spec.root.path).toBe('rootfs');
});

test('a refusal is a FAIL with the runtime\'s own message, and the temp bundle is gone', () => {
  const before = readdirSync(tmpdir()).filter((n) => n.startsWith('nvidia-ctk-doctor-')).length;
  const f = dryRunCreate(defaultConfig(), {
    loadInventory: () => {
      throw new NvrError('DRIVER_ROOT', 'driver root /nope does not exist or is not a directory', { fix: 'pass --root' });
    },
    hookPath: '/usr/bin/nvidia-runtime-hook',
  });
  expect(checkDryRun(f)).toMatchObject({ status: 'FAIL', message: expect.stringContaining('driver root /nope does not exist'), fix: 'pass --root' });
  expect(readdirSync(tmpdir()).filter((n) => n.startsWith('nvidia-ctk-doctor-')).length).toBe(before);
});

test('a config the runtime refuses fails the create before anything is planned', () => {
  const err = new NvrError('CONFIG', 'config.toml /x: writable by group or others (mode 664): refusing to use it', { fix: 'chmod go-w /x' });
  const f = dryRunCreate(defaultConfig(), { loadInventory: () => { throw new Error('not reached'); }, hookPath: '/h', configError: err });
  expect(checkDryRun(f)).toMatchObject({ status: 'FAIL', fix: 'chmod go-w /x' });
});

test('a grant is a PASS naming the devices and the edits', () => {
  const c = checkDryRun({ env: SAMPLE_ENV, granted: 'GPU-a', edits: { deviceNodes: ['/dev/nvidiactl', '/dev/nvidia0'], mounts: 7, hooks: 1 } });
  expect(c.status).toBe('PASS');
  expect(c.message).toContain('NVIDIA_VISIBLE_DEVICES=GPU-a: 2 device nodes (/dev/nvidiactl, /dev/nvidia0), 7 read-only mounts, 1 hook(s)');
});
