/** The warm path's wire format (src/serve/protocol.ts, docs/warm-path.md "Messages"). */
import fc from 'fast-check';
import { SERVE_MAGIC, SERVE_MAX_MESSAGE_BYTES } from '../../../src/launcher-contract.js';
import { formatAnswer, formatRequest, parseAnswer, parseRequest, requestComplete, type ServeAnswer, type ServeRequest } from '../../../src/serve/protocol.js';

const value = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const absPath = value.map((s) => `/${s}`);
const request: fc.Arbitrary<ServeRequest> = fc.record({
  cwd: absPath,
  configPath: fc.option(absPath, { nil: undefined }),
  path: fc.option(value, { nil: undefined }),
  args: fc.array(value, { maxLength: 12 }),
});
const answer: fc.Arbitrary<ServeAnswer> = fc.oneof(
  fc.record({ kind: fc.constant('cold' as const), reason: value.filter((s) => s !== '.' && s !== '' && !/[\r\n]/.test(s)) }),
  fc.record({ kind: fc.constant('runc' as const), runc: absPath }),
  fc.record({ kind: fc.constant('write' as const), runc: absPath, file: absPath, identity: value.filter((s) => s !== ''), text: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) }),
);
const recs = (...r: string[]): Buffer => Buffer.concat(r.map((x) => Buffer.from(`${x}\0`)));

describe('requests', () => {
  test('the documented bytes', () => {
    const bytes = recs(SERVE_MAGIC, 'd/w', 'c', 'P', 'acreate', 'a-b', 'ab', 'aid', '.');
    expect(parseRequest(bytes)).toEqual({ ok: true, value: { cwd: '/w', configPath: undefined, path: undefined, args: ['create', '-b', 'b', 'id'] } });
    expect(formatRequest({ cwd: '/w', configPath: undefined, path: undefined, args: ['create', '-b', 'b', 'id'] })).toEqual(bytes);
    expect(parseRequest(recs(SERVE_MAGIC, 'd/', 'c/etc/x.toml', 'p', '.'))).toEqual({ ok: true, value: { cwd: '/', configPath: '/etc/x.toml', path: '', args: [] } });
  });

  test('format → parse is the identity', () => {
    fc.assert(fc.property(request, (r) => {
      const bytes = formatRequest(r);
      expect(requestComplete(bytes)).toBe(true);
      expect(parseRequest(bytes)).toEqual({ ok: true, value: r });
    }));
  });

  test('every strict prefix of a request is refused, never thrown', () => {
    fc.assert(fc.property(request, fc.nat(), (r, cut) => {
      const bytes = formatRequest(r);
      const p = parseRequest(bytes.subarray(0, cut % bytes.length));
      expect(p.ok).toBe(false);
      if (!p.ok) expect(typeof p.reason).toBe('string');
    }));
  });

  test('garbage never throws; it parses only as a well-formed request', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (a) => {
      const p = parseRequest(Buffer.from(a));
      if (p.ok) expect(formatRequest(p.value)).toEqual(Buffer.from(a));
    }), { numRuns: 2000 });
    fc.assert(fc.property(request, fc.nat(), fc.integer({ min: 0, max: 255 }), (r, at, byte) => {
      const bytes = Buffer.from(formatRequest(r));
      bytes[at % bytes.length] = byte;
      const p = parseRequest(bytes);
      if (p.ok) expect(formatRequest(p.value)).toEqual(bytes);
    }));
  });

  test('refusals: wrong magic, order, unknown record, trailing bytes, not UTF-8, oversized', () => {
    for (const bad of [
      recs('nvidia-runtime-serve 2', 'd/', 'c', 'P', '.'),
      recs(SERVE_MAGIC, 'c', 'd/', 'P', '.'),
      recs(SERVE_MAGIC, 'd/', 'c', 'P', 'xfoo', '.'),
      recs(SERVE_MAGIC, 'd/', 'c', 'P', '.', 'aextra'),
      recs(SERVE_MAGIC, 'd/', 'c', 'Pextra', '.'),
      Buffer.concat([recs(SERVE_MAGIC, 'd/'), Buffer.from([0x63, 0xff, 0]), recs('P', '.')]),
      Buffer.concat([recs(SERVE_MAGIC, 'd/', 'c', 'P'), Buffer.alloc(SERVE_MAX_MESSAGE_BYTES, 0x61), recs('.')]),
      Buffer.alloc(0),
    ]) {
      expect(parseRequest(bad).ok).toBe(false);
    }
  });
});

describe('answers', () => {
  test('the documented bytes', () => {
    expect(formatAnswer({ kind: 'runc', runc: '/usr/bin/runc' })).toEqual(recs(SERVE_MAGIC, 'runc', 'r/usr/bin/runc', '.'));
    expect(formatAnswer({ kind: 'cold', reason: 'why' })).toEqual(recs(SERVE_MAGIC, 'cold', 'why', '.'));
    expect(formatAnswer({ kind: 'write', runc: '/r', file: '/b/config.json', identity: '1,2,3,4,5,6,7', text: Buffer.from('{}') }))
      .toEqual(Buffer.concat([recs(SERVE_MAGIC, 'write', 'r/r', 'f/b/config.json', 'i1,2,3,4,5,6,7', 'n2'), Buffer.from('{}.\0')]));
  });

  test('format → parse is the identity', () => {
    fc.assert(fc.property(answer, (a) => {
      expect(parseAnswer(formatAnswer(a))).toEqual({ ok: true, value: a });
    }));
  });

  test('what cannot be said exactly becomes cold', () => {
    const coldOf = (a: ServeAnswer): string | undefined => {
      const p = parseAnswer(formatAnswer(a));
      return p.ok && p.value.kind === 'cold' ? p.value.reason : undefined;
    };
    expect(coldOf({ kind: 'runc', runc: 'runc' })).toBeDefined();
    expect(coldOf({ kind: 'runc', runc: '/a\0b' })).toBeDefined();
    expect(coldOf({ kind: 'write', runc: '/r', file: 'rel', identity: 'i', text: Buffer.from('') })).toBeDefined();
    expect(coldOf({ kind: 'write', runc: '/r', file: '/f', identity: 'i', text: Buffer.alloc(SERVE_MAX_MESSAGE_BYTES) })).toMatch(/larger/);
    // A reason is one record, never the end record.
    expect(coldOf({ kind: 'cold', reason: 'a\0b\nc' })).toBe('a b c');
    expect(coldOf({ kind: 'cold', reason: '.' })).toBe('(.)');
    expect(coldOf({ kind: 'cold', reason: 'x'.repeat(5000) })!.length).toBeLessThanOrEqual(1024);
  });

  test('truncated or garbage answers never parse as runc/write and never throw', () => {
    fc.assert(fc.property(answer, fc.nat(), (a, cut) => {
      const bytes = formatAnswer(a);
      expect(parseAnswer(bytes.subarray(0, cut % bytes.length)).ok).toBe(false);
    }));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (a) => {
      expect(() => parseAnswer(Buffer.from(a))).not.toThrow();
    }), { numRuns: 2000 });
  });
});
