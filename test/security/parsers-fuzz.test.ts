/**
 * Threat: hostile input to the parsers that decide what a container gets (SECURITY.md §5, §6 "fuzzing of the TS
 * config.json/env parsers"). For arbitrary input every parser either answers or refuses with one of our typed errors
 * (NvrError: one line, a fix, an exit code) — never an internal error, a hang or a crash — and the request parser
 * agrees with itself on equivalent spellings. fast-check, fixed seeds so a failure reproduces.
 */
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import { isNvrError } from '../../src/errors.js';
import { getAnnotations, getBoundingCapabilities, getEnv, getMounts, parseSpec } from '../../src/oci/spec-file.js';
import { parseVisibleDevices } from '../../src/request/devices.js';
import { envToMap } from '../../src/request/env.js';
import { parseRequest } from '../../src/request/parse.js';
import { parseRequirement } from '../../src/require/grammar.js';

const RUNS = { numRuns: 2000, seed: 424242 };

/** f(x) answers or throws an NvrError; anything else fails the property. */
function typedOrValue<T>(f: () => T): void {
  try {
    f();
  } catch (e) {
    if (!isNvrError(e)) throw new Error(`not a typed error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    expect(e.userMessage()).not.toMatch(/\n/);
  }
}

const envWords = fc.constantFrom('NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'NVIDIA_REQUIRE_CUDA', 'NVIDIA_REQUIRE_X',
  'NVIDIA_DISABLE_REQUIRE', 'CUDA_VERSION', 'NVIDIA_MIG_CONFIG_DEVICES', 'NVIDIA_IMEX_CHANNELS', 'PATH', '');
const valueWords = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('all', 'none', 'void', '0,1', 'GPU-1234', '0:1', 'MIG-x', '00000000:07:00.0', 'nvidia.com/gpu=0', 'compute,utility',
    'cuda>=12.0 brand=tesla', 'cuda>=99999999999999999999', '12.4.1', ',,', ' all ', '\u0000', '\uffff', 'a'.repeat(5000)),
);
const envEntry = fc.oneof(fc.tuple(envWords, valueWords).map(([k, v]) => `${k}=${v}`), fc.string({ maxLength: 30 }));

test('request parser: any env, mounts, annotations and privilege → a request or a typed error', () => {
  fc.assert(fc.property(
    fc.array(envEntry, { maxLength: 8 }),
    fc.array(fc.record({ source: fc.option(fc.constantFrom('/dev/null', '/x', ''), { nil: undefined }), destination: fc.oneof(fc.constantFrom('/var/run/nvidia-container-devices/0', '/var/run/nvidia-container-devices/all', '/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/0', '/var/run/nvidia-container-devices/../x'), fc.string({ maxLength: 20 })) }), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom('cdi.k8s.io/gpu', 'cdi.k8s.io/'), fc.string({ maxLength: 15 })), valueWords, { maxKeys: 3 }),
    fc.boolean(), fc.boolean(), fc.constantFrom('auto', 'cdi', 'legacy') as fc.Arbitrary<'auto' | 'cdi' | 'legacy'>,
    (env, mounts, annotations, privileged, acceptMounts, mode) => {
      typedOrValue(() => parseRequest(
        { env, mounts, annotations, boundingCapabilities: privileged ? ['CAP_SYS_ADMIN'] : [] },
        { acceptEnvvarWhenUnprivileged: !acceptMounts, acceptVolumeMounts: acceptMounts, supportedCapabilities: ['compute', 'utility', 'video', 'graphics', 'display', 'compat32', 'ngx'], disableRequire: false, mode },
      ));
    }), RUNS);
});

test('env, device list and requirement grammars: any text → a value or a typed error', () => {
  fc.assert(fc.property(fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 6 }), (env) => {
    typedOrValue(() => envToMap(env as unknown[]));
  }), RUNS);
  fc.assert(fc.property(valueWords, (v) => typedOrValue(() => parseVisibleDevices(v))), RUNS);
  fc.assert(fc.property(valueWords, (v) => typedOrValue(() => parseRequirement(v, 'NVIDIA_REQUIRE_X'))), RUNS);
});

test('config.json: any text, and any mutation of a real spec → a spec or a typed SPEC error', () => {
  const real = JSON.stringify({ ociVersion: '1.0.2', process: { env: ['NVIDIA_VISIBLE_DEVICES=0'], capabilities: { bounding: ['CAP_KILL'] } }, root: { path: 'rootfs' }, mounts: [{ destination: '/a', source: '/b', type: 'bind' }], annotations: { a: 'b' } });
  const mutated = fc.tuple(fc.nat(real.length), fc.nat(4), fc.string({ maxLength: 4 })).map(([at, drop, ins]) => real.slice(0, at) + ins + real.slice(at + drop));
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), mutated, fc.json()), (text) => {
    typedOrValue(() => {
      const spec = parseSpec(text, 'config.json');
      getEnv(spec); getMounts(spec); getAnnotations(spec); getBoundingCapabilities(spec);
    });
  }), RUNS);
});

test('config.toml: any text, and any mutation of a real file → a config or a typed CONFIG error', () => {
  const real = '[nvidia-container-cli]\nroot = "/run/nvidia/driver"\n[nvidia-container-runtime]\nruntimes = ["runc"]\nmode = "auto"\n[nvidia-container-runtime.modes.cdi]\nannotation-prefixes = ["cdi.k8s.io/"]\n';
  const mutated = fc.tuple(fc.nat(real.length), fc.nat(4), fc.string({ maxLength: 4 })).map(([at, drop, ins]) => real.slice(0, at) + ins + real.slice(at + drop));
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), mutated), (text) => {
    typedOrValue(() => parseConfig(text, '/etc/nvidia-container-runtime/config.toml'));
  }), RUNS);
});
