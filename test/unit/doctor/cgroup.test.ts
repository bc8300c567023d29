/** The daemon-reload risk: missing /dev/char links matter only with a systemd cgroup driver. */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDevChar, gatherDevChar, type DevCharFacts } from '../../../src/doctor/cgroup.js';
import type { EngineFact } from '../../../src/doctor/engines.js';

const docker = (systemd: boolean): EngineFact => ({ engine: 'docker', installed: true, files: [], systemdCgroup: systemd, systemdWhy: 'exec-opts' });
const missing: DevCharFacts = { linkDir: '/dev/char', missing: ['195:0 -> ../nvidia0'], linked: 0 };

test('missing links with a systemd engine: WARN naming the NVML symptom and the command that fixes it', () => {
  const c = checkDevChar(missing, [docker(true)], '/');
  expect(c.status).toBe('WARN');
  expect(c.message).toContain('Failed to initialize NVML: Unknown Error');
  expect(c.fix).toContain('nvidia-ctk system create-dev-char-symlinks --create-all');
  expect(c.fix).not.toContain('--driver-root');
  expect(checkDevChar({ ...missing, linkDir: '/x' }, [docker(true)], '/run/nvidia/driver').fix).toContain('--driver-root /run/nvidia/driver --dev-char-path /x');
});

test('missing links without a systemd engine (or with it not installed) are only an INFO; all linked is a PASS', () => {
  expect(checkDevChar(missing, [docker(false)], '/').status).toBe('INFO');
  expect(checkDevChar(missing, [{ ...docker(true), installed: false }], '/').status).toBe('INFO');
  expect(checkDevChar({ ...missing, missing: [], linked: 3 }, [docker(true)], '/').status).toBe('PASS');
});

test('gathering plans with the command\'s own code: a node without a link is missing, a right link is kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvr-doctor-devchar-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'dev'), { recursive: true });
    await execa('mknod', [join(root, 'dev/nvidia0'), 'c', '195', '0']);
    await execa('mknod', [join(root, 'dev/nvidiactl'), 'c', '195', '255']);
    const links = join(dir, 'char');
    expect(gatherDevChar(root, links)).toMatchObject({ missing: [`195:0 -> ${root}/dev/nvidia0`, `195:255 -> ${root}/dev/nvidiactl`], linked: 0 });
    mkdirSync(links);
    symlinkSync(join(root, 'dev/nvidia0'), join(links, '195:0'));
    expect(gatherDevChar(root, links)).toMatchObject({ missing: [`195:255 -> ${root}/dev/nvidiactl`], linked: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
