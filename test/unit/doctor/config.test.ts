/** config.toml checks: the runtime's reader and parser on real files in a temp dir, then pure checks over the facts. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configChecks, effectiveValues, gatherConfig } from '../../../src/doctor/config.js';
import { defaultConfig } from '../../../src/config/defaults.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-doctor-config-'));
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SELF = '/nonexistent/nvidia-runtime';
const file = (text: string, mode = 0o644): string => {
  const f = join(dir, 'config.toml');
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
};
const byId = (checks: ReturnType<typeof configChecks>) => Object.fromEntries(checks.map((c) => [c.id, c]));

test('a good file: PASS trust and keys, the effective values, the runc it finds', () => {
  const f = file('[nvidia-container-cli]\nroot = "/run/nvidia/driver"\n');
  const c = byId(configChecks(gatherConfig({ env: {}, file: f, self: SELF })));
  expect(c['config.file']!.status).toBe('PASS');
  expect(c['config.keys']!.status).toBe('PASS');
  expect(c['config.values']).toMatchObject({ status: 'INFO', details: { driverRoot: '/run/nvidia/driver', mode: 'auto' } });
  expect(c['config.runc']!.status).toBe('PASS');
});

test('a group-writable file is the runtime\'s refusal: FAIL with its fix, but its other problems still show', () => {
  const f = file('bogus = 1\n', 0o664);
  const facts = gatherConfig({ env: {}, file: f, self: SELF });
  expect(facts.usable).toBe(false);
  const c = byId(configChecks(facts));
  expect(c['config.file']).toMatchObject({ status: 'FAIL', fix: `chown root ${f} && chmod go-w ${f}` });
  expect(c['config.file']!.message).toContain('writable by group or others (mode 664)');
  expect(c['config.keys']).toMatchObject({ status: 'WARN', message: expect.stringContaining('unknown key "bogus" ignored') });
});

test('$NVIDIA_CTK_CONFIG_FILE_PATH is honoured; a missing default file means the defaults (INFO)', () => {
  const f = file('disable-require = true\n');
  expect(gatherConfig({ env: { NVIDIA_CTK_CONFIG_FILE_PATH: f }, self: SELF })).toMatchObject({ file: f, source: 'env', usable: true });
  const none = gatherConfig({ env: { NVIDIA_CTK_CONFIG_FILE_PATH: join(dir, 'none.toml') }, self: SELF });
  expect(none).toMatchObject({ exists: false, usable: true });
  expect(configChecks(none)[0]!.status).toBe('INFO');
});

test('--config naming a missing file is bad input, not a report', () => {
  expect(() => gatherConfig({ env: {}, file: join(dir, 'none.toml'), self: SELF })).toThrow(/no such file/);
});

test('invalid TOML is a FAIL naming the line', () => {
  const c = byId(configChecks(gatherConfig({ env: {}, file: file('[nvidia-container-cli\n'), self: SELF })));
  expect(c['config.parse']).toMatchObject({ status: 'FAIL', message: expect.stringContaining('invalid TOML') });
});

test('no runc among the runtimes is a FAIL', () => {
  const c = byId(configChecks(gatherConfig({ env: {}, file: file('[nvidia-container-runtime]\nruntimes = ["no-such-runc-here"]\n'), self: SELF })));
  expect(c['config.runc']!.status).toBe('FAIL');
});

test('effective values name what decides a container\'s grant', () => {
  expect(Object.keys(effectiveValues(defaultConfig()))).toEqual(expect.arrayContaining(['mode', 'runtimes', 'driverRoot', 'accept-nvidia-visible-devices-envvar-when-unprivileged']));
});
