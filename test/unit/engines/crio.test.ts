import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Ajv as AjvClass } from 'ajv';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { formatToml, parseToml } from '../../../src/engines/containerd.js';
import { configureCrio, CRIO_RUNTIME_ROOT, unconfigureCrio } from '../../../src/engines/crio.js';

const fixture = (name: string) => readFileSync(join(PACKAGE_ROOT, 'test/fixtures/engines', name), 'utf8');
const OPTS = { runtimeName: 'nvidia', runtimePath: '/usr/bin/nvidia-runtime', setAsDefault: true, cdiEnabled: false };
const PLAIN = { ...OPTS, setAsDefault: false };

/**
 * CRI-O's runtime handler table (pkg/config/config.go RuntimeHandler, FACTS §4.4): every key a handler may have,
 * with its TOML type. CRI-O is not packaged here, so the written handler is checked against this.
 */
const HANDLER_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['runtime_path'],
  properties: {
    runtime_path: { type: 'string', pattern: '^/' },
    runtime_type: { enum: ['oci', 'vm', 'pod'] },
    runtime_root: { type: 'string', pattern: '^/' },
    runtime_config_path: { type: 'string' },
    monitor_path: { type: 'string' },
    monitor_cgroup: { type: 'string' },
    monitor_env: { type: 'array', items: { type: 'string' } },
    privileged_without_host_devices: { type: 'boolean' },
    allowed_annotations: { type: 'array', items: { type: 'string' } },
    platform_runtime_paths: { type: 'object', additionalProperties: { type: 'string' } },
    container_min_memory: { type: 'string' },
    no_sync_log: { type: 'boolean' },
    default_annotations: { type: 'object', additionalProperties: { type: 'string' } },
    inherit_default_runtime: { type: 'boolean' },
  },
};
/** `[crio.runtime]` keys we may write, and the handler table under `runtimes`. */
const DOC_SCHEMA = {
  type: 'object',
  required: ['crio'],
  properties: {
    crio: {
      type: 'object',
      required: ['runtime'],
      properties: {
        runtime: {
          type: 'object',
          required: ['runtimes'],
          properties: {
            default_runtime: { type: 'string' },
            runtimes: { type: 'object', additionalProperties: HANDLER_SCHEMA },
          },
        },
      },
    },
  },
};

const Ajv = createRequire(import.meta.url)('ajv').default as typeof AjvClass;
const validate = new Ajv({ allErrors: true, strict: true }).compile(DOC_SCHEMA);

test('the drop-in is exactly our handler (golden) and valid for CRI-O', () => {
  const text = formatToml(configureCrio({}, PLAIN));
  expect(text).toBe(fixture('crio-drop-in.golden.toml'));
  expect(validate(parseToml(text, 'drop-in'))).toBe(true);
  expect(validate.errors ?? null).toBeNull();
});

test('the schema check can fail: a wrong type or an unknown key is reported', () => {
  expect(validate({ crio: { runtime: { runtimes: { nvidia: { runtime_path: '/x', runtime_type: 'runc' } } } } })).toBe(false);
  expect(validate({ crio: { runtime: { runtimes: { nvidia: { runtime_path: '/x', runtime_engine: '/x' } } } } })).toBe(false);
  expect(validate({ crio: { runtime: { runtimes: { nvidia: { runtime_path: '/x', privileged_without_host_devices: 'no' } } } } })).toBe(false);
});

test('main crio.conf: handler added, default_runtime set, everything else kept (golden), valid for CRI-O', () => {
  const out = formatToml(configureCrio(parseToml(fixture('crio.conf'), 'crio.conf'), OPTS));
  expect(out).toBe(fixture('crio.conf.golden.toml'));
  expect(validate(parseToml(out, 'x'))).toBe(true);
});

test('handler keys already set by hand survive; ours are always ours', () => {
  const doc = { crio: { runtime: { runtimes: { nvidia: { runtime_path: '/old', monitor_path: '/usr/libexec/crio/conmon' } } } } };
  expect(configureCrio(doc, PLAIN)).toEqual({
    crio: { runtime: { runtimes: { nvidia: { runtime_path: OPTS.runtimePath, monitor_path: '/usr/libexec/crio/conmon', runtime_type: 'oci', runtime_root: CRIO_RUNTIME_ROOT } } } },
  });
});

test('idempotent; uninstall restores the original (default_runtime removed only when it names ours)', () => {
  const doc = parseToml(fixture('crio.conf'), 'crio.conf');
  const once = configureCrio(doc, PLAIN);
  expect(configureCrio(once, PLAIN)).toEqual(once);
  expect(unconfigureCrio(once, OPTS)).toEqual(doc);
  expect(unconfigureCrio(configureCrio({}, OPTS), OPTS)).toEqual({});
  const withDefault = unconfigureCrio(configureCrio(doc, OPTS), OPTS) as any;
  expect(withDefault.crio.runtime.default_runtime).toBeUndefined();
  expect(withDefault.crio.runtime.runtimes).toEqual({ crun: doc.crio && (doc as any).crio.runtime.runtimes.crun });
});
