/** The strict JSON reader against the platform's JSON.parse, on generated documents and near-misses of them. */
import fc from 'fast-check';
import { isLosslessNumber, LosslessNumber } from 'lossless-json';
import { JsonProblem, parseStrictJson, type StrictJsonOptions } from '../../../src/oci/strict-json.js';
import type { JsonNumber } from '../../../src/oci/types.js';

const parseNumber = (text: string): JsonNumber => (String(Number(text)) === text ? Number(text) : new LosslessNumber(text));
const OPTS: StrictJsonOptions = {
  maxDepth: 64, mapValuedKeys: new Set(['annotations']), forbiddenKeys: new Set(['__proto__']), fold: (k) => k.toLowerCase(), parseNumber,
};

/** Lossless numbers back to plain numbers, to compare with JSON.parse. */
const plain = (v: unknown): unknown =>
  isLosslessNumber(v) ? Number((v as LosslessNumber).toString())
    : Array.isArray(v) ? v.map(plain)
      : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;

/** Keys that are distinct even case-folded, and never a prototype key: the documents the reader must accept. */
const doc = fc.jsonValue({ maxDepth: 6 }).filter((v) => {
  const ok = (x: unknown): boolean => {
    if (Array.isArray(x)) return x.every(ok);
    if (x === null || typeof x !== 'object') return true;
    const keys = Object.keys(x);
    return !keys.includes('__proto__') && new Set(keys.map((k) => k.toLowerCase())).size === keys.length && Object.values(x).every(ok);
  };
  return ok(v);
});

test('every generated document reads back as JSON.parse reads it, whitespace and escapes included', () => {
  fc.assert(
    fc.property(doc, fc.constantFrom(undefined, 1, '\t'), fc.boolean(), (v, space, ascii) => {
      let text = JSON.stringify(v, null, space);
      if (ascii) text = text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
      expect(plain(parseStrictJson(text, OPTS))).toEqual(JSON.parse(text));
    }),
    { numRuns: 500 },
  );
});

test('a near-miss of a document is refused as a syntax error exactly when JSON.parse refuses it', () => {
  const nearMiss = fc.tuple(doc, fc.nat(), fc.constantFrom('', '"', '\\', ',', '}', ']', '{', '[', ':', '0', '-', 'e', 'tru', '\u0001', ' '), fc.nat(3))
    .map(([v, at, insert, drop]) => {
      const text = JSON.stringify(v);
      const k = at % (text.length + 1);
      return text.slice(0, k) + insert + text.slice(k + drop);
    });
  let refused = 0;
  fc.assert(
    fc.property(nearMiss, (text) => {
      let platform = true;
      try {
        JSON.parse(text);
      } catch {
        platform = false;
      }
      try {
        parseStrictJson(text, OPTS);
        expect(platform).toBe(true);
      } catch (e) {
        expect(e).toBeInstanceOf(JsonProblem);
        const p = e as JsonProblem;
        expect(p.offset).toBeGreaterThanOrEqual(0);
        expect(p.offset).toBeLessThanOrEqual(text.length);
        if (p.kind === 'syntax') expect(platform).toBe(false);
        refused++;
      }
    }),
    { numRuns: 2000 },
  );
  expect(refused).toBeGreaterThan(500);
});

test('duplicates, case variants, prototype keys and depth', () => {
  const problem = (text: string): JsonProblem => {
    try {
      parseStrictJson(text, OPTS);
    } catch (e) {
      return e as JsonProblem;
    }
    throw new Error('accepted');
  };
  expect(problem('{"a":1,"a":1}')).toMatchObject({ kind: 'key', offset: 7, message: 'duplicate key "a"' });
  expect(problem('{"env":1,"Env":2}').message).toBe('key "Env" duplicates "env" (keys differ only in case)');
  expect(parseStrictJson('{"annotations":{"a":"1","A":"2"}}', OPTS)).toEqual({ annotations: { a: '1', A: '2' } });
  expect(problem('{"x":{"__proto__":{}}}')).toMatchObject({ kind: 'key', message: 'forbidden key "__proto__"' });
  expect(problem(`${'['.repeat(65)}${']'.repeat(65)}`)).toMatchObject({ kind: 'depth', offset: 64 });
  expect(parseStrictJson('[18446744073709551615,1.0,1e2,-0]', OPTS)).toEqual([
    new LosslessNumber('18446744073709551615'), new LosslessNumber('1.0'), new LosslessNumber('1e2'), new LosslessNumber('-0'),
  ]);
});
