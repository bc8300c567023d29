import { spawnSync } from 'node:child_process';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLosslessNumber } from 'lossless-json';
import { NvrError } from '../../../src/errors.js';
import {
  getAnnotations,
  getBoundingCapabilities,
  getEnv,
  getMounts,
  getRootPath,
  parseSpec,
  readSpec,
  serializeSpec,
  SPEC_MAX_DEPTH,
  SPEC_SIZE_LIMIT,
} from '../../../src/oci/spec-file.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/specs/', import.meta.url));
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

/** Independent oracle: the input with whitespace outside strings removed. */
function compact(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}

function specError(fn: () => unknown): NvrError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NvrError);
    expect((e as NvrError).code).toBe('SPEC');
    return e as NvrError;
  }
  throw new Error('expected an NvrError');
}

const FILE = '/run/bundle/config.json';

describe('parseSpec / serializeSpec round trip', () => {
  it('reproduces the runc spec output exactly in compact form', () => {
    const text = fixture('runc-spec.json');
    expect(serializeSpec(parseSpec(text, FILE))).toBe(compact(text));
  });

  it('keeps 64-bit integers, number spelling, key order and unknown fields of a Docker spec', () => {
    const text = fixture('docker-spec.json');
    const spec = parseSpec(text, FILE);
    const out = serializeSpec(spec);
    // Escapes are re-encoded by the serializer; compare through JSON.parse for the one string that has them.
    expect(out.replace('"été \\"quoted\\" \\\\ back"', '"\\u00e9t\\u00e9 \\"quoted\\" \\\\ back"')).toBe(compact(text));
    expect(out).toContain('"limit":18446744073709551615');
    expect(out).toContain('"swap":9223372036854775807');
    expect(out).toContain('"value":18446744073709551615');
    expect(out).toContain('"ratio":1.0');
    expect(out).toContain('"negzero":-0');
    expect(out).toContain('"tiny":1e-7');
    expect(Object.keys(spec)).toEqual(['ociVersion', 'process', 'root', 'hostname', 'mounts', 'hooks', 'annotations', 'x-vendor', 'linux']);
    const memory = (spec.linux?.resources as Record<string, Record<string, unknown>>).memory;
    expect(isLosslessNumber(memory.limit)).toBe(true);
    expect(String(memory.limit)).toBe('18446744073709551615');
    expect(memory.reservation).toBe(-1); // safe numbers stay plain numbers
  });

  it('serializes with indentation when asked', () => {
    const spec = parseSpec('{"a":{"b":18446744073709551615}}', FILE);
    expect(serializeSpec(spec, 2)).toBe('{\n  "a": {\n    "b": 18446744073709551615\n  }\n}');
  });
});

describe('parseSpec rejects', () => {
  it('invalid JSON, naming the file and the line/column', () => {
    const e = specError(() => parseSpec('{\n  "ociVersion": "1.0",\n  "process": {,}\n}', FILE));
    expect(e.message).toContain(FILE);
    expect(e.message).toMatch(/line 3 column \d+/);
    expect(e.fix).toBeTruthy();
  });

  it.each([
    ['truncated', '{"ociVersion":"1.0","process":{'],
    ['trailing garbage', '{"ociVersion":"1.0"} x'],
    ['empty', ''],
    ['whitespace only', '  \n'],
  ])('%s input', (_name, text) => {
    expect(specError(() => parseSpec(text, FILE)).message).toContain(FILE);
  });

  it.each([
    ['null', 'null', /null/],
    ['an array', '[]', /array/],
    ['a string', '"x"', /string/],
    ['a number', '18446744073709551615', /object/],
  ])('a non-object (%s)', (_name, text, re) => {
    const e = specError(() => parseSpec(text, FILE));
    expect(e.message).toContain(FILE);
    expect(e.message).toMatch(re);
  });

  it('a byte order mark', () => {
    expect(specError(() => parseSpec('\ufeff{}', FILE)).message).toMatch(/byte order mark/);
  });

  it('exact duplicate keys, even with equal values', () => {
    const e = specError(() => parseSpec('{"process":{"env":["A=1"]},"process":{"env":["A=1"]}}', FILE));
    expect(e.message).toContain(FILE);
    expect(e.message).toMatch(/duplicate key "process" at line 1 column 28/);
  });

  it('duplicate keys with different values, nested', () => {
    expect(specError(() => parseSpec('{"linux":{"resources":{"memory":{"limit":1,"limit":2}}}}', FILE)).message).toMatch(/duplicate key "limit"/);
  });

  it('case-variant duplicate keys (Go would read the last one)', () => {
    const e = specError(() => parseSpec('{"process":{"env":["A=1"]},"Process":{"env":["NVIDIA_VISIBLE_DEVICES=all"]}}', FILE));
    expect(e.message).toMatch(/"Process" duplicates "process"/);
  });

  it("Go's special case folding (ſ, K)", () => {
    expect(specError(() => parseSpec('{"mounts":[],"mount\u017f":[]}', FILE)).message).toMatch(/differ only in case/);
    expect(specError(() => parseSpec('{"linux":{"\u212aeep":1,"keep":2}}', FILE)).message).toMatch(/differ only in case/);
  });

  it('a lone case variant of a field runc reads', () => {
    expect(specError(() => parseSpec('{"Process":{"env":[]}}', FILE)).message).toMatch(/"Process" in \(top level\) is a case variant of "process"/);
    expect(specError(() => parseSpec('{"linux":{"resources":{"Devices":[]}}}', FILE)).message).toMatch(/linux\.resources/);
    expect(specError(() => parseSpec('{"mounts":[{"destination":"/a","Source":"/b"}]}', FILE)).message).toMatch(/mounts\[\]/);
    expect(specError(() => parseSpec('{"hooks":{"prestart":[{"path":"/a","ENV":[]}]}}', FILE)).message).toMatch(/hooks\.\*\[\]/);
  });

  it('allows case-different keys inside map-valued objects (annotations, sysctl)', () => {
    const spec = parseSpec('{"annotations":{"A":"1","a":"2"},"linux":{"sysctl":{"X":"1","x":"2"}}}', FILE);
    expect(getAnnotations(spec)).toEqual({ A: '1', a: '2' });
    expect(specError(() => parseSpec('{"annotations":{"a":"1","a":"1"}}', FILE)).message).toMatch(/duplicate key "a"/);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('the prototype key %s, without polluting anything', (key) => {
    const e = specError(() => parseSpec(`{"process":{"${key}":{"polluted":true}}}`, FILE));
    expect(e.message).toContain(`"${key}"`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('nesting deeper than the limit: one clear error naming it, not a stack overflow', () => {
    const deep = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;
    expect(parseSpec(deep(SPEC_MAX_DEPTH - 2), FILE)).toBeDefined();
    for (const n of [SPEC_MAX_DEPTH, 3000, 100_000]) {
      expect(specError(() => parseSpec(deep(n), FILE)).message).toMatch(new RegExp(`nested deeper than ${SPEC_MAX_DEPTH} levels at line 1 column \\d+ \\(the limit of this runtime\\)`));
    }
  });

  it('a spec near the size cap is read with memory a small multiple of its size', () => {
    // The built module runs in a child, so jest's own heap does not count.
    const mod = path.join(PACKAGE_ROOT, 'dist/oci/spec-file.js');
    const code = `const { parseSpec } = await import(${JSON.stringify(mod)});
      const base = process.resourceUsage().maxRSS;
      const text = JSON.stringify({ ociVersion: '1.0.2', annotations: { big: 'x'.repeat(30 * 1024 * 1024) }, process: { env: Array.from({ length: 20000 }, (_, i) => 'V' + i + '=x') } });
      parseSpec(text, 'c.json');
      console.log(JSON.stringify({ bytes: text.length, grewKiB: process.resourceUsage().maxRSS - base }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const { bytes, grewKiB } = JSON.parse(r.stdout) as { bytes: number; grewKiB: number };
    expect(grewKiB * 1024).toBeLessThan(5 * bytes); // lossless-json needed ~40x
  });

  it('text above the size cap', () => {
    const text = `{"x":"${'a'.repeat(SPEC_SIZE_LIMIT)}"}`;
    expect(specError(() => parseSpec(text, FILE)).message).toMatch(/limit/);
  });
});

describe('readSpec', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvr-spec-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads <bundle>/config.json', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), fixture('runc-spec.json'));
    const got = readSpec(dir);
    expect(got.path).toBe(path.join(dir, 'config.json'));
    expect(got.text).toBe(fixture('runc-spec.json'));
    expect(got.spec.hostname).toBe('runc');
  });

  it('a missing file names the path', () => {
    const e = specError(() => readSpec(dir));
    expect(e.message).toBe(`${path.join(dir, 'config.json')}: does not exist`);
  });

  it('a directory at config.json', () => {
    fs.mkdirSync(path.join(dir, 'config.json'));
    expect(specError(() => readSpec(dir)).message).toMatch(/config\.json: is not a regular file/);
  });

  it('a file above the cap is refused before it is read', () => {
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, '{}');
    fs.truncateSync(file, SPEC_SIZE_LIMIT + 1); // sparse: cheap
    expect(specError(() => readSpec(dir)).message).toMatch(/above the 33554432 byte limit/);
  });

  it('invalid UTF-8', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
    expect(specError(() => readSpec(dir)).message).toMatch(/not valid UTF-8/);
  });

  it('invalid JSON in the file names the file', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), '{"a":');
    expect(specError(() => readSpec(dir)).message).toContain(path.join(dir, 'config.json'));
  });
});

describe('readers', () => {
  const spec = parseSpec(fixture('docker-spec.json'), FILE);

  it('return plain copies of env, mounts, annotations, bounding caps and root.path', () => {
    const env = getEnv(spec);
    expect(env.filter((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='))).toEqual(['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_VISIBLE_DEVICES=0']);
    env.push('X=1');
    expect(getEnv(spec)).not.toContain('X=1');
    expect(getMounts(spec).map((m) => m.destination)).toEqual([
      '/proc', '/etc/resolv.conf', '/dev', '/etc/hostname', '/sys', '/dev/pts', '/sys/fs/cgroup', '/dev/mqueue', '/etc/hosts', '/dev/shm',
    ]);
    expect(getAnnotations(spec)['org.opencontainers.image.ref.name']).toBe('ubuntu');
    expect(getBoundingCapabilities(spec)).toContain('CAP_MKNOD');
    expect(getRootPath(spec)).toBe('/var/lib/docker/overlay2/5e1f0d8c9b7a/merged');
  });

  it('return empty values when fields are absent', () => {
    const empty = parseSpec('{}', FILE);
    expect(getEnv(empty)).toEqual([]);
    expect(getMounts(empty)).toEqual([]);
    expect(getAnnotations(empty)).toEqual({});
    expect(getBoundingCapabilities(empty)).toEqual([]);
    expect(getRootPath(empty)).toBeUndefined();
  });

  it('reject wrong types with a SPEC error naming the field', () => {
    expect(specError(() => getEnv(parseSpec('{"process":{"env":"A=1"}}', FILE), FILE)).message).toBe(`${FILE}: process.env must be an array of strings`);
    expect(specError(() => getEnv(parseSpec('{"process":"x"}', FILE))).message).toMatch(/process must be an object/);
    expect(specError(() => getMounts(parseSpec('{"mounts":[{"source":"/x"}]}', FILE))).message).toMatch(/mounts\[0\]/);
    expect(specError(() => getAnnotations(parseSpec('{"annotations":{"a":1}}', FILE))).message).toMatch(/annotations\["a"\]/);
    expect(specError(() => getRootPath(parseSpec('{"root":{"path":7}}', FILE))).message).toMatch(/root\.path/);
  });
});
