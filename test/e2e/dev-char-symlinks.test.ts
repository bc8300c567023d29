/**
 * The shipped `nvidia-ctk system create-dev-char-symlinks` against a mock driver root with real char device nodes
 * (made by the shipped `nvidia-ctk mock-driver`; tests run as root): links and their numbers, idempotence, replacing
 * a wrong link, leaving a file alone, --dry-run, --create-all, and the one-line errors.
 */
import { execa } from 'execa';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRdev } from '../../src/host/devices.js';
import { distBin, tempDir } from '../helpers/dist.js';

let dir: string;
let root: string;
beforeAll(async () => {
  dir = tempDir('devchar');
  root = join(dir, 'root');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', root, '--gpus', '2']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The NVIDIA nodes of the mock with `--gpus 2` (no MIG): in-root path → major:minor, read from the nodes. */
const NODES = [
  '/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl', '/dev/nvidia-modeset', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools',
  ...Array.from({ length: 8 }, (_, i) => `/dev/nvidia-caps-imex-channels/channel${i}`),
];
function numbersOf(path: string): string {
  const { major, minor } = decodeRdev(statSync(path, { bigint: true }).rdev);
  return `${major}:${minor}`;
}

const run = (args: string[], env: Record<string, string> = {}) =>
  execa(distBin('nvidia-ctk'), ['system', 'create-dev-char-symlinks', ...args], { reject: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false });

let n = 0;
const freshCharDir = (): string => join(dir, `char${n++}`);

test('one link per NVIDIA node, named by the numbers of the node, to the node; a second run changes nothing', async () => {
  const char = freshCharDir();
  const first = await run(['--driver-root', root, '--dev-char-path', char]);
  expect(first.exitCode).toBe(0);
  expect(first.stderr).toBe('');
  const expected = Object.fromEntries(NODES.map((p) => [numbersOf(join(root, p)), join(root, p)]));
  expect(Object.keys(expected)).toHaveLength(NODES.length);
  expect(readdirSync(char).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, target] of Object.entries(expected)) {
    expect(readlinkSync(join(char, name))).toBe(target); // a driver root other than /: the absolute node path
    expect(statSync(join(char, name)).isCharacterDevice()).toBe(true);
    expect(numbersOf(join(char, name))).toBe(name);
    expect(first.stdout).toContain(`created ${join(char, name)} -> ${target}\n`);
  }
  expect(first.stdout.split('\n').at(-1)).toBe(`${char}: 14 created, 0 replaced, 0 already correct, 0 left alone; 14 NVIDIA device nodes under ${root}/dev`);

  const inodes = readdirSync(char).map((f) => lstatSync(join(char, f)).ino);
  const second = await run(['--driver-root', root, '--dev-char-path', char]);
  expect(second.exitCode).toBe(0);
  expect(second.stdout).toBe(`${char}: 0 created, 0 replaced, 14 already correct, 0 left alone; 14 NVIDIA device nodes under ${root}/dev`);
  expect(readdirSync(char).map((f) => lstatSync(join(char, f)).ino)).toEqual(inodes);
});

test('a link to another target is replaced (no temporary left behind); a regular file is left alone with a warning', async () => {
  const char = freshCharDir();
  mkdirSync(char);
  const gpu0 = numbersOf(join(root, 'dev/nvidia0'));
  const ctl = numbersOf(join(root, 'dev/nvidiactl'));
  symlinkSync('/nonexistent/nvidia9', join(char, gpu0));
  writeFileSync(join(char, ctl), 'keep me\n');
  const r = await run(['--driver-root', root, '--dev-char-path', char]);
  expect(r.exitCode).toBe(0);
  expect(readlinkSync(join(char, gpu0))).toBe(join(root, 'dev/nvidia0'));
  expect(r.stdout).toContain(`replaced ${join(char, gpu0)} -> ${join(root, 'dev/nvidia0')} (was -> /nonexistent/nvidia9)\n`);
  expect(readFileSync(join(char, ctl), 'utf8')).toBe('keep me\n');
  expect(r.stderr).toBe(`nvidia-ctk: warning: ${join(char, ctl)} exists and is a regular file, not a symbolic link; left alone (remove it and run again to link it to ${join(root, 'dev/nvidiactl')})`);
  expect(r.stdout.split('\n').at(-1)).toBe(`${char}: 12 created, 1 replaced, 0 already correct, 1 left alone; 14 NVIDIA device nodes under ${root}/dev`);
  expect(readdirSync(char).filter((f) => f.startsWith('.'))).toEqual([]);
  expect(readdirSync(char)).toHaveLength(14);
});

test('--dry-run (or DRY_RUN=1) prints what it would do and writes nothing', async () => {
  const char = freshCharDir();
  const r = await run(['--driver-root', root, '--dev-char-path', char, '--dry-run']);
  expect(r.exitCode).toBe(0);
  expect(existsSync(char)).toBe(false);
  expect(r.stdout).toContain(`would create ${join(char, numbersOf(join(root, 'dev/nvidia1')))} -> ${join(root, 'dev/nvidia1')}\n`);
  expect(r.stdout.split('\n').at(-1)).toBe(`dry run, nothing changed in ${char}: would create 14, would replace 0, 0 already correct, 0 left alone; 14 NVIDIA device nodes under ${root}/dev`);

  mkdirSync(char);
  symlinkSync('/wrong', join(char, numbersOf(join(root, 'dev/nvidia0'))));
  const env = await run([], { NVIDIA_DRIVER_ROOT: root, NVIDIA_CTK_DEV_CHAR_PATH: char, DRY_RUN: '1' });
  expect(env.exitCode).toBe(0);
  expect(env.stdout).toMatch(/would replace .* \(was -> \/wrong\)\n/);
  expect(readdirSync(char)).toEqual([numbersOf(join(root, 'dev/nvidia0'))]);
  expect(readlinkSync(join(char, numbersOf(join(root, 'dev/nvidia0'))))).toBe('/wrong');
});

test('--create-all also links the nodes the driver lists but that do not exist (yet); without it they get none', async () => {
  const copy = join(dir, 'root-no-gpu1');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', copy, '--gpus', '2']);
  const gpu1 = numbersOf(join(copy, 'dev/nvidia1'));
  unlinkSync(join(copy, 'dev/nvidia1'));

  const plain = freshCharDir();
  expect((await run(['--driver-root', copy, '--dev-char-path', plain])).exitCode).toBe(0);
  expect(existsSync(join(plain, gpu1))).toBe(false);
  expect(readdirSync(plain)).toHaveLength(13);

  const all = freshCharDir();
  const r = await run(['--driver-root', copy, '--dev-char-path', all, '--create-all', '--load-kernel-modules', '--create-device-nodes']);
  expect(r.exitCode).toBe(0);
  expect(readlinkSync(join(all, gpu1))).toBe(join(copy, 'dev/nvidia1'));
  expect(r.stdout).toContain(`created ${join(all, gpu1)} -> ${join(copy, 'dev/nvidia1')} (node does not exist yet)\n`);
  // The MIG config capability from the driver's mig-minors table (its major from /proc/devices), dangling too.
  const capsMajor = /^(\d+) nvidia-caps$/m.exec(readFileSync(join(copy, 'proc/devices'), 'utf8'))![1];
  const configMinor = /^config (\d+)$/m.exec(readFileSync(join(copy, 'proc/driver/nvidia-caps/mig-minors'), 'utf8'))![1];
  expect(readlinkSync(join(all, `${capsMajor}:${configMinor}`))).toBe(join(copy, `dev/nvidia-caps/nvidia-cap${configMinor}`));
  // Existing nodes keep the numbers of the node itself.
  for (const p of NODES.filter((p) => p !== '/dev/nvidia1')) expect(readlinkSync(join(all, numbersOf(join(copy, p))))).toBe(join(copy, p));
  expect(r.stderr.split('\n')).toEqual([
    'nvidia-ctk: warning: --load-kernel-modules is ignored: nvidia-runtime never loads kernel modules; load them first (nvidia-modprobe, or modprobe nvidia nvidia-uvm)',
    'nvidia-ctk: warning: --create-device-nodes is ignored: nvidia-runtime never creates device nodes on the host; create them first (nvidia-modprobe -c 0 -u, or run nvidia-smi)',
  ]);
  expect(existsSync(join(copy, 'dev/nvidia1'))).toBe(false); // and it really did not create the node
});

test('a bad --driver-root, a bad variable, a file as --dev-char-path: one line, exit 1, nothing written', async () => {
  const char = freshCharDir();
  const missing = await run(['--driver-root', join(dir, 'nope'), '--dev-char-path', char]);
  expect(missing.exitCode).toBe(1);
  expect(missing.stdout).toBe('');
  expect(missing.stderr).toBe(
    `nvidia-ctk: create-dev-char-symlinks: driver root ${join(dir, 'nope')} does not exist or is not a directory; pass --driver-root with the root the driver is installed under (/ for a host driver, /run/nvidia/driver for a driver container)`,
  );
  const badEnv = await run(['--driver-root', root, '--dev-char-path', char], { CREATE_ALL: 'yes' });
  expect(badEnv.exitCode).toBe(1);
  expect(badEnv.stderr).toBe('nvidia-ctk: CREATE_ALL="yes" (for --create-all) is not a boolean; set CREATE_ALL to true or false (1/0), or unset it');
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  const notDir = await run(['--driver-root', root, '--dev-char-path', file]);
  expect(notDir.exitCode).toBe(1);
  expect(notDir.stderr.split('\n')).toHaveLength(1);
  expect(notDir.stderr).toMatch(/--dev-char-path .*a-file is a regular file, not a directory/);
  expect(existsSync(char)).toBe(false);
});

test("driver root / (this machine's own /dev): links, if any, are relative (../nvidia0) and lead to the node", async () => {
  const char = freshCharDir();
  const r = await run(['--dev-char-path', char]);
  expect(r.exitCode).toBe(0);
  if (!existsSync(char)) {
    // No NVIDIA driver on this machine: nothing to link, and the directory is not even made.
    expect(r.stdout).toBe('no NVIDIA device nodes under /dev; nothing to link');
    return;
  }
  for (const name of readdirSync(char)) {
    expect(readlinkSync(join(char, name)).startsWith('/')).toBe(false);
    expect(numbersOf(join(char, name))).toBe(name);
  }
});
