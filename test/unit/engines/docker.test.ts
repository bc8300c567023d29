import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { NvrError } from '../../../src/errors.js';
import { configureDocker, formatDaemonJson, parseDaemonJson, unconfigureDocker } from '../../../src/engines/docker.js';

const fixture = (name: string) => readFileSync(join(PACKAGE_ROOT, 'test/fixtures/engines', name), 'utf8');
const OPTS = { runtimeName: 'nvidia', runtimePath: '/usr/bin/nvidia-runtime', setAsDefault: true, cdiEnabled: true };
const PLAIN = { ...OPTS, setAsDefault: false, cdiEnabled: false };

test('an empty document gets the runtime, default-runtime and features.cdi (golden)', () => {
  expect(formatDaemonJson(configureDocker(parseDaemonJson('', 'daemon.json'), OPTS))).toBe(fixture('docker-empty.golden.json'));
});

test('existing keys, runtimes and features are kept, in order (golden)', () => {
  const doc = parseDaemonJson(fixture('docker-existing.json'), 'daemon.json');
  expect(formatDaemonJson(configureDocker(doc, OPTS))).toBe(fixture('docker-existing.golden.json'));
});

test('without --set-as-default and --cdi.enabled only the runtime entry is added', () => {
  expect(configureDocker({ debug: true }, PLAIN)).toEqual({ debug: true, runtimes: { nvidia: { path: OPTS.runtimePath, runtimeArgs: [] } } });
});

test('configure is pure and idempotent', () => {
  const doc = parseDaemonJson(fixture('docker-existing.json'), 'daemon.json');
  const before = JSON.stringify(doc);
  const once = configureDocker(doc, OPTS);
  expect(JSON.stringify(doc)).toBe(before);
  expect(configureDocker(once, OPTS)).toEqual(once);
});

test('a shim-v2 entry of the same name is replaced (runtimeType and path are mutually exclusive)', () => {
  const doc = { runtimes: { nvidia: { runtimeType: 'io.containerd.runc.v2', options: { BinaryName: '/old' } } } };
  expect(configureDocker(doc, PLAIN).runtimes).toEqual({ nvidia: { path: OPTS.runtimePath, runtimeArgs: [] } });
});

test('uninstall restores the original document (as dockerd reloads it: an emptied runtimes stays {})', () => {
  const doc = parseDaemonJson(fixture('docker-existing.json'), 'daemon.json');
  expect(unconfigureDocker(configureDocker(doc, { ...OPTS, cdiEnabled: false, setAsDefault: false }), OPTS)).toEqual(doc);
  expect(unconfigureDocker(configureDocker({}, PLAIN), OPTS)).toEqual({ runtimes: {} });
});

test('uninstall resets default-runtime to runc only when it names our runtime; features.cdi stays', () => {
  expect(unconfigureDocker({ 'default-runtime': 'custom', runtimes: { nvidia: {}, custom: {} } }, OPTS)).toEqual({ 'default-runtime': 'custom', runtimes: { custom: {} } });
  expect(unconfigureDocker(configureDocker({}, OPTS), OPTS)).toEqual({ runtimes: {}, 'default-runtime': 'runc', features: { cdi: true } });
});

test('malformed JSON and non-object documents are NvrErrors naming the file', () => {
  for (const [text, re] of [[fixture('malformed.json'), /^\/etc\/docker\/daemon\.json: not valid JSON: /], ['[1]', /not a JSON object/]] as const) {
    try {
      parseDaemonJson(text, '/etc/docker/daemon.json');
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(NvrError);
      expect((e as NvrError).code).toBe('INPUT');
      expect((e as NvrError).message).toMatch(re);
    }
  }
});

test('a non-object "runtimes" is refused', () => {
  expect(() => configureDocker({ runtimes: [] }, OPTS)).toThrow(/"runtimes" is not an object/);
});
