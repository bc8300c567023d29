/**
 * A strict, lossless JSON reader for specs runc (Go's encoding/json) will read after us. One pass, no recursion
 * deeper than `maxDepth`, memory a small multiple of the text (strings are sliced or decoded once by JSON.parse):
 *
 * - numbers keep their exact text unless a JS number reproduces it (`parseNumber` decides the representation);
 * - duplicate keys are refused: exact ones everywhere, keys that differ only in case (Go matches struct fields
 *   case-insensitively, the last one wins) outside objects Go decodes as maps (`mapValuedKeys`, by parent key);
 * - prototype keys (`forbiddenKeys`) are refused before they could be assigned.
 *
 * Errors are JsonProblem with the offset of the offending token; the caller turns it into line/column.
 */
import type { JsonNumber, JsonValue } from './types.js';

export class JsonProblem extends Error {
  constructor(message: string, readonly offset: number, readonly kind: 'syntax' | 'key' | 'depth') {
    super(message);
  }
}

export interface StrictJsonOptions {
  maxDepth: number;
  mapValuedKeys: ReadonlySet<string>;
  forbiddenKeys: ReadonlySet<string>;
  /** Case folding as Go's field matching does it. */
  fold: (key: string) => string;
  parseNumber: (text: string) => JsonNumber;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const CONTROL = /[\u0000-\u001f]/;

export function parseStrictJson(text: string, o: StrictJsonOptions): JsonValue {
  let i = 0;
  const n = text.length;
  const fail = (message: string, at = i, kind: JsonProblem['kind'] = 'syntax'): never => {
    throw new JsonProblem(message, at, kind);
  };
  const what = (at: number): string => (at >= n ? 'the end of the text' : `${JSON.stringify(text[at])}`);
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      i++;
    }
  };

  function string(): string {
    const start = i;
    let q = i + 1;
    for (;;) {
      q = text.indexOf('"', q);
      if (q < 0) fail('unterminated string', start);
      let slashes = 0;
      while (text.charCodeAt(q - 1 - slashes) === 0x5c) slashes++;
      if (slashes % 2 === 0) break;
      q++;
    }
    i = q + 1;
    const body = text.slice(start + 1, q);
    if (!body.includes('\\')) {
      if (CONTROL.test(body)) fail('control character in a string (it must be escaped)', start);
      return body;
    }
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('invalid escape or control character in a string', start);
    }
  }

  function value(depth: number, parentKey: string | undefined): JsonValue {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= o.maxDepth) fail(`nested deeper than ${o.maxDepth} levels`, i, 'depth');
      return c === '{' ? object(depth, parentKey) : array(depth);
    }
    if (c === '"') return string();
    if (c === 't' && text.startsWith('true', i)) return (i += 4), true;
    if (c === 'f' && text.startsWith('false', i)) return (i += 5), false;
    if (c === 'n' && text.startsWith('null', i)) return (i += 4), null;
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail(`unexpected ${what(i)}, expected a JSON value`);
    i += m[0].length;
    return o.parseNumber(m[0]);
  }

  function object(depth: number, parentKey: string | undefined): JsonValue {
    i++; // {
    const out: Record<string, JsonValue> = {};
    const seen = new Map<string, string>();
    const caseSensitive = parentKey !== undefined && o.mapValuedKeys.has(parentKey);
    ws();
    if (text[i] === '}') return i++, out;
    for (;;) {
      ws();
      if (text[i] !== '"') fail(`unexpected ${what(i)}, expected a key`);
      const at = i;
      const key = string();
      if (o.forbiddenKeys.has(key)) fail(`forbidden key "${key}"`, at, 'key');
      const norm = caseSensitive ? key : o.fold(key);
      const prev = seen.get(norm);
      if (prev !== undefined) {
        fail(prev === key ? `duplicate key "${key}"` : `key "${key}" duplicates "${prev}" (keys differ only in case)`, at, 'key');
      }
      seen.set(norm, key);
      ws();
      if (text[i] !== ':') fail(`unexpected ${what(i)}, expected ':'`);
      i++;
      out[key] = value(depth + 1, key);
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') return i++, out;
      fail(`unexpected ${what(i)}, expected ',' or '}'`);
    }
  }

  function array(depth: number): JsonValue {
    i++; // [
    const out: JsonValue[] = [];
    ws();
    if (text[i] === ']') return i++, out;
    for (;;) {
      out.push(value(depth + 1, undefined));
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') return i++, out;
      fail(`unexpected ${what(i)}, expected ',' or ']'`);
    }
  }

  const result = value(0, undefined);
  ws();
  if (i < n) fail(`unexpected ${what(i)} after the JSON value`);
  return result;
}
