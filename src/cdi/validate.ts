/**
 * Validation of CDI spec documents: our schema (schema.ts, ajv) first, then the rules a schema cannot express —
 * name syntax, env syntax, hook names, unique device names, non-empty device edits, and the version rule: a
 * spec's cdiVersion must be known and at least the minimum version that has every field it uses (FACTS §3.1).
 * Every problem names the field (`devices[1].containerEdits.deviceNodes[0].hostPath`).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from 'ajv';
import { NvrError } from '../errors.js';
import { HOOK_NAMES } from '../edits/types.js';
import { deviceNameProblem, kindProblem } from './names.js';
import { CDI_SCHEMA } from './schema.js';
import type { CdiContainerEdits, CdiSpec } from './types.js';

/** Every cdiVersion ever published, oldest first. */
export const KNOWN_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'] as const;
/** The oldest version current CDI libraries load. */
export const EARLIEST_SUPPORTED_VERSION = '0.3.0';

export interface SpecProblem {
  /** Dotted path of the offending field ("devices[0].name"), or "" for the document itself. */
  field: string;
  reason: string;
}

/** `v0.5.0` / `0.5.0` → [0,5,0]; undefined when not x.y.z. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Negative, zero or positive like a sort comparator; both must be parseable. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new Error(`compareVersions: ${x ? b : a} is not a version`);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

function allEdits(spec: CdiSpec): CdiContainerEdits[] {
  return [...(spec.containerEdits ? [spec.containerEdits] : []), ...spec.devices.map((d) => d.containerEdits ?? {})];
}

const nonEmpty = (o: Record<string, string> | undefined): boolean => o !== undefined && Object.keys(o).length > 0;

/**
 * The lowest cdiVersion that expresses everything `spec` uses (upstream's requiresV0x0 rules): what `cdi generate`
 * writes, and the floor a loaded spec's own cdiVersion must reach.
 */
export function minimumVersion(spec: CdiSpec): string {
  const edits = allEdits(spec);
  if (edits.some((e) => (e.netDevices?.length ?? 0) > 0 || (e.intelRdt && ((e.intelRdt.schemata?.length ?? 0) > 0 || e.intelRdt.enableMonitoring)))) {
    return '1.1.0';
  }
  if (edits.some((e) => e.intelRdt !== undefined || (e.additionalGids?.length ?? 0) > 0)) return '0.7.0';
  const cls = spec.kind.includes('/') ? spec.kind.slice(spec.kind.indexOf('/') + 1) : '';
  if (nonEmpty(spec.annotations) || spec.devices.some((d) => nonEmpty(d.annotations)) || cls.includes('.')) return '0.6.0';
  if (spec.devices.some((d) => /^[0-9]/.test(d.name)) || edits.some((e) => (e.deviceNodes ?? []).some((n) => (n.hostPath ?? '') !== ''))) {
    return '0.5.0';
  }
  if (edits.some((e) => (e.mounts ?? []).some((m) => (m.type ?? '') !== ''))) return '0.4.0';
  return EARLIEST_SUPPORTED_VERSION;
}

let compiled: ValidateFunction | undefined;
const require = createRequire(import.meta.url);
/**
 * ajv's standalone code for CDI_SCHEMA is generated at build time (scripts/build-config-validator.mjs), so the
 * runtime's CDI path does not load and run a schema compiler on every create; from src/ (tests) ajv compiles it.
 */
function schemaValidator(): ValidateFunction {
  if (!compiled) {
    try {
      // Relative to dist/<dir>/, so it resolves from dist/cdi/ and from the bundled dist/runtime/main.js alike.
      compiled = require(fileURLToPath(new URL('../cdi/cdi-validator.cjs', import.meta.url))) as ValidateFunction;
    } catch {
      const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
      compiled = newCdiAjv(Ajv).compile(CDI_SCHEMA);
    }
  }
  return compiled;
}

/** The ajv set-up for CDI_SCHEMA, shared with the build script. */
export function newCdiAjv(Ajv: typeof AjvClass, options: Record<string, unknown> = {}): AjvClass {
  return new Ajv({ allErrors: false, strict: true, ...options });
}

/** JSON pointer → dotted field path: /devices/0/name → devices[0].name. */
export function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

const join = (field: string, key: string): string => (field ? `${field}.${key}` : key);

function schemaProblem(e: ErrorObject): SpecProblem {
  const field = fieldPath(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    return { field: join(field, String(e.params.additionalProperty)), reason: 'unknown field' };
  }
  if (e.keyword === 'required') return { field: join(field, String(e.params.missingProperty)), reason: 'required field is missing' };
  return { field, reason: e.message ?? e.keyword };
}

function editsProblem(e: CdiContainerEdits, at: string): SpecProblem | undefined {
  for (const [i, kv] of (e.env ?? []).entries()) {
    if (kv.indexOf('=') <= 0) return { field: `${at}.env[${i}]`, reason: `${JSON.stringify(kv)} is not KEY=VALUE` };
  }
  for (const [i, d] of (e.deviceNodes ?? []).entries()) {
    if (!d.path.startsWith('/')) return { field: `${at}.deviceNodes[${i}].path`, reason: `${JSON.stringify(d.path)} must be absolute` };
    if (d.hostPath && !d.hostPath.startsWith('/')) return { field: `${at}.deviceNodes[${i}].hostPath`, reason: `${JSON.stringify(d.hostPath)} must be absolute` };
    if (d.permissions !== undefined && d.permissions !== 'none' && !/^[rwm]*$/.test(d.permissions)) {
      return { field: `${at}.deviceNodes[${i}].permissions`, reason: `${JSON.stringify(d.permissions)} must be made of r, w, m (or be "none")` };
    }
  }
  for (const [i, h] of (e.hooks ?? []).entries()) {
    if (!(HOOK_NAMES as readonly string[]).includes(h.hookName)) {
      return { field: `${at}.hooks[${i}].hookName`, reason: `${JSON.stringify(h.hookName)} is not one of ${HOOK_NAMES.join(', ')}` };
    }
    if (!h.path.startsWith('/')) return { field: `${at}.hooks[${i}].path`, reason: `${JSON.stringify(h.path)} must be absolute` };
    for (const [j, kv] of (h.env ?? []).entries()) {
      if (kv.indexOf('=') <= 0) return { field: `${at}.hooks[${i}].env[${j}]`, reason: `${JSON.stringify(kv)} is not KEY=VALUE` };
    }
  }
  return undefined;
}

const isEmptyEdits = (e: CdiContainerEdits): boolean =>
  !e.intelRdt && (['env', 'deviceNodes', 'hooks', 'mounts', 'additionalGids', 'netDevices'] as const).every((k) => (e[k]?.length ?? 0) === 0);

/** The first problem of a parsed document, or undefined when it is a valid CDI spec. */
export function specProblem(doc: unknown): SpecProblem | undefined {
  const validate = schemaValidator();
  if (!validate(doc)) return schemaProblem(validate.errors![0]!);
  const spec = doc as CdiSpec;

  const version = parseVersion(spec.cdiVersion);
  if (!version || !(KNOWN_VERSIONS as readonly string[]).includes(spec.cdiVersion.replace(/^v/, ''))) {
    return { field: 'cdiVersion', reason: `"${spec.cdiVersion}" is not a known CDI version (${KNOWN_VERSIONS.join(', ')})` };
  }
  if (compareVersions(spec.cdiVersion, EARLIEST_SUPPORTED_VERSION) < 0) {
    return { field: 'cdiVersion', reason: `"${spec.cdiVersion}" is older than the oldest supported version ${EARLIEST_SUPPORTED_VERSION}` };
  }
  const kind = kindProblem(spec.kind);
  if (kind) return { field: 'kind', reason: kind };

  const seen = new Set<string>();
  for (const [i, d] of spec.devices.entries()) {
    const name = deviceNameProblem(d.name);
    if (name) return { field: `devices[${i}].name`, reason: name };
    if (seen.has(d.name)) return { field: `devices[${i}].name`, reason: `device "${d.name}" is defined more than once` };
    seen.add(d.name);
    if (isEmptyEdits(d.containerEdits)) return { field: `devices[${i}].containerEdits`, reason: 'a device must have at least one edit' };
    const p = editsProblem(d.containerEdits, `devices[${i}].containerEdits`);
    if (p) return p;
  }
  if (spec.containerEdits) {
    const p = editsProblem(spec.containerEdits, 'containerEdits');
    if (p) return p;
  }
  const needed = minimumVersion(spec);
  if (compareVersions(spec.cdiVersion, needed) < 0) {
    return { field: 'cdiVersion', reason: `"${spec.cdiVersion}" is too old for the fields this spec uses: it needs at least ${needed}` };
  }
  return undefined;
}

/** `doc` as a CdiSpec, or NvrError INPUT naming the file and the field. */
export function validateCdiSpec(doc: unknown, file: string): CdiSpec {
  const p = specProblem(doc);
  if (p) {
    throw new NvrError('INPUT', `CDI spec ${file}: ${p.field ? `${p.field}: ` : ''}${p.reason}`, {
      fix: 'fix the spec (see docs/cdi.md) or remove the file',
    });
  }
  return doc as CdiSpec;
}
