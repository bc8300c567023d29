import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { NvrError } from '../../../src/errors.js';
import {
  addContainerdImport, configureContainerd, configVersionForContainerd, containerdConfigVersion, containerdDropIn,
  formatToml, parseToml, removeContainerdImport, unconfigureContainerd,
} from '../../../src/engines/containerd.js';

const fixture = (name: string) => readFileSync(join(PACKAGE_ROOT, 'test/fixtures/engines', name), 'utf8');
const OPTS = { runtimeName: 'nvidia', runtimePath: '/usr/bin/nvidia-runtime', setAsDefault: true, cdiEnabled: true, cdiAnnotationPrefixes: ['cdi.k8s.io/'] };
const PLAIN = { ...OPTS, setAsDefault: false, cdiEnabled: false };
const load = (name: string) => parseToml(fixture(name), name);

test.each([
  ['containerd-v2', 2],
  ['containerd-v3', 3],
] as const)('%s: handler with options copied from runc, default, enable_cdi; other plugins kept (golden)', (name, version) => {
  const doc = load(`${name}.toml`);
  expect(containerdConfigVersion(doc, name, 2)).toBe(version);
  const configured = configureContainerd(doc, { ...OPTS, version });
  expect(formatToml(configured)).toBe(fixture(`${name}.golden.toml`));
  expect(formatToml(containerdDropIn(configured, version))).toBe(fixture(`${name}.drop-in.golden.toml`));
});

test('an empty config gets version, the spelled-out runc handler (containerd drops the built-in one) and ours (golden)', () => {
  expect(formatToml(configureContainerd({}, { ...PLAIN, version: 2 }))).toBe(fixture('containerd-empty.golden.toml'));
});

test('keys already on our handler survive a re-run; BinaryName is always ours', () => {
  const doc = configureContainerd(load('containerd-v2.toml'), { ...PLAIN, version: 2 });
  const handler = (d: ReturnType<typeof parseToml>) => (d as any).plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.nvidia;
  handler(doc).privileged_without_host_devices = true;
  handler(doc).options.BinaryName = '/old/path';
  const again = configureContainerd(doc, { ...PLAIN, version: 2 });
  expect(handler(again).privileged_without_host_devices).toBe(true);
  expect(handler(again).options).toEqual({ SystemdCgroup: true, Root: '/run/containerd/runc', BinaryName: PLAIN.runtimePath });
});

test('container_annotations: a glob per CDI annotation prefix; globs already there are kept first, never doubled', () => {
  const handler = (d: ReturnType<typeof parseToml>) => (d as any).plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.nvidia;
  const prefixes = ['cdi.k8s.io/', 'nvidia.cdi.k8s.io/'];
  const doc = configureContainerd({}, { ...PLAIN, cdiAnnotationPrefixes: prefixes, version: 2 });
  expect(handler(doc).container_annotations).toEqual(['cdi.k8s.io/*', 'nvidia.cdi.k8s.io/*']);
  handler(doc).container_annotations = ['example.com/*', 'nvidia.cdi.k8s.io/*'];
  const again = configureContainerd(doc, { ...PLAIN, cdiAnnotationPrefixes: prefixes, version: 2 });
  expect(handler(again).container_annotations).toEqual(['example.com/*', 'nvidia.cdi.k8s.io/*', 'cdi.k8s.io/*']);
  // No prefixes configured: nothing is added, and the key is not written empty.
  expect(handler(configureContainerd({}, { ...PLAIN, cdiAnnotationPrefixes: [], version: 2 }))).not.toHaveProperty('container_annotations');
  // The runc handler's list is inherited like its other keys.
  const runc = { version: 2, plugins: { 'io.containerd.grpc.v1.cri': { containerd: { runtimes: { runc: { runtime_type: 'io.containerd.runc.v2', container_annotations: ['a/*'] } } } } } };
  expect(handler(configureContainerd(runc, { ...PLAIN, version: 2 })).container_annotations).toEqual(['a/*', 'cdi.k8s.io/*']);
});

test('container_annotations that is not a list of strings is refused, naming the key', () => {
  const bad = { version: 2, plugins: { 'io.containerd.grpc.v1.cri': { containerd: { runtimes: { nvidia: { container_annotations: 'cdi.k8s.io/*' } } } } } };
  expect(() => configureContainerd(bad, { ...PLAIN, version: 2, file: 'c.toml' })).toThrow(
    'c.toml: plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.container_annotations is not a list of strings',
  );
});

test('configure is idempotent and does not modify its input', () => {
  const doc = load('containerd-v2.toml');
  const text = formatToml(doc);
  const once = configureContainerd(doc, { ...OPTS, version: 2 });
  expect(formatToml(doc)).toBe(text);
  expect(formatToml(configureContainerd(once, { ...OPTS, version: 2 }))).toBe(formatToml(once));
});

test.each(['containerd-v2.toml', 'containerd-v3.toml'])('uninstall restores %s', (name) => {
  const doc = load(name);
  const version = containerdConfigVersion(doc, name, 2);
  expect(unconfigureContainerd(configureContainerd(doc, { ...PLAIN, version }), OPTS)).toEqual(doc);
});

test('uninstall of what configure added to an empty config leaves only the version', () => {
  expect(unconfigureContainerd(configureContainerd({}, { ...OPTS, cdiEnabled: false, version: 2 }), OPTS)).toEqual({ version: 2 });
});

test('uninstall removes default_runtime_name only when it names ours', () => {
  const configured = configureContainerd(load('containerd-v2.toml'), { ...PLAIN, setAsDefault: true, version: 2 });
  const back = unconfigureContainerd(configured, OPTS) as any;
  expect(back.plugins['io.containerd.grpc.v1.cri'].containerd.default_runtime_name).toBeUndefined();
  const other = { version: 2, plugins: { 'io.containerd.grpc.v1.cri': { containerd: { default_runtime_name: 'kata', runtimes: { nvidia: {}, kata: {} } } } } };
  expect((unconfigureContainerd(other, OPTS) as any).plugins['io.containerd.grpc.v1.cri'].containerd).toEqual({ default_runtime_name: 'kata', runtimes: { kata: {} } });
});

test('config version: explicit 2/3, missing → fallback, version 1 refused', () => {
  expect(containerdConfigVersion(load('containerd-noversion.toml'), 'f', 3)).toBe(3);
  expect(containerdConfigVersion({}, 'f', 2)).toBe(2);
  expect(() => containerdConfigVersion(load('containerd-v1.toml'), '/etc/containerd/config.toml', 2)).toThrow(/\/etc\/containerd\/config\.toml: containerd config version 1 is not supported/);
  expect(() => containerdConfigVersion({ version: 1 }, 'f', 2)).toThrow(NvrError);
  expect(() => containerdConfigVersion({ version: 7 }, 'f', 2)).toThrow(/unsupported config version 7/);
});

test('containerd --version → config version', () => {
  expect(configVersionForContainerd('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3')).toBe(2);
  expect(configVersionForContainerd('containerd containerd.io v1.7.27 05044ec0a9')).toBe(2);
  expect(configVersionForContainerd('containerd github.com/containerd/containerd/v2 v2.1.3 c787fb9')).toBe(3);
  expect(configVersionForContainerd(undefined)).toBe(2);
});

test('imports: the drop-in is added once, not when a glob covers it, and removal takes only our entry', () => {
  const dropIn = '/etc/containerd/conf.d/99-nvidia.toml';
  const added = addContainerdImport({ version: 2, imports: ['/etc/containerd/local.d/*.toml'] }, dropIn, 2, 'f');
  expect(added.imports).toEqual(['/etc/containerd/local.d/*.toml', dropIn]);
  expect(addContainerdImport(added, dropIn, 2, 'f')).toEqual(added);
  expect(addContainerdImport({ imports: ['/etc/containerd/conf.d/*.toml'] }, dropIn, 2, 'f')).toEqual({ imports: ['/etc/containerd/conf.d/*.toml'], version: 2 });
  expect(removeContainerdImport(added, dropIn)).toEqual({ version: 2, imports: ['/etc/containerd/local.d/*.toml'] });
  expect(removeContainerdImport({ version: 2, imports: [dropIn] }, dropIn)).toEqual({ version: 2 });
  expect(() => addContainerdImport({ imports: 'x' }, dropIn, 2, 'f')).toThrow(/imports is not a list/);
});

test('64-bit integers survive the round trip', () => {
  const text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nIoUid = 9223372036854775807\n';
  expect(formatToml(configureContainerd(parseToml(text, 'f'), { ...PLAIN, version: 2 }))).toContain('IoUid = 9223372036854775807\n');
});

test('malformed TOML is an NvrError with file, line and column; a non-table in the way too', () => {
  expect(() => parseToml(fixture('malformed.toml'), '/etc/containerd/config.toml')).toThrow(/^\/etc\/containerd\/config\.toml: not valid TOML: .* at line 2, column \d+$/);
  expect(() => configureContainerd({ version: 2, plugins: { 'io.containerd.grpc.v1.cri': { containerd: 'x' } } }, { ...PLAIN, version: 2, file: 'c.toml' }))
    .toThrow(/c\.toml: plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd is not a table/);
});
