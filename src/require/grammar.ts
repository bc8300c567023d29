/**
 * The NVIDIA_REQUIRE_* constraint grammar (FACTS §1.8, libnvidia-container src/cli/dsl.c):
 *   predicate := OR-groups separated by spaces; group := AND-terms separated by commas;
 *   term := key op value, key ∈ cuda|driver|arch|brand (case-insensitive), op ∈ = != < <= > >=.
 * `cuda`, `driver` and `arch` compare dotted numbers; `brand` compares strings and allows only = and !=.
 * As in libnvidia-container, terms are parsed when an alternative is evaluated, not before: evaluation stops at the
 * first satisfied alternative, so `cuda>=11.6 foo=bar` holds on a CUDA 12 host and an unknown key only matters when
 * its alternative is reached (src/require/evaluate.ts).
 */
import { NvrError } from '../errors.js';

export type RequireKey = 'cuda' | 'driver' | 'arch' | 'brand';
export type RequireOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export interface RequireTerm {
  key: RequireKey;
  op: RequireOp;
  value: string;
  text: string; // the term as written
}

export interface Requirement {
  text: string; // the whole predicate, trimmed
  /** OR of AND-groups of terms as written (parseTerm reads one). Empty when the predicate is blank: no constraint. */
  groups: string[][];
  /** Where it came from (`NVIDIA_REQUIRE_CUDA`), for messages. */
  source: string;
}

const KEYS: readonly RequireKey[] = ['arch', 'brand', 'cuda', 'driver'];
const OPS: readonly RequireOp[] = ['=', '!=', '<', '<=', '>', '>='];
const OP_CHARS = /[<>=!]/;
const OP_RUN = /^[<>=!]+/;
/** A dotted number: what both sides of a cuda/driver/arch comparison must be. */
export const DOTTED_NUMBER = /^\d+(\.\d+)*$/;

function quote(text: string, max = 120): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

function invalid(source: string, predicate: string, term: string, why: string): NvrError {
  const where = source ? `${source}: ` : '';
  return new NvrError('INPUT', `${where}invalid requirement ${quote(predicate)}: ${quote(term)} ${why}`, {
    fix:
      'write terms as <key><op><value> with key cuda, driver, arch or brand and op =, !=, <, <=, > or >=; ' +
      'separate AND-terms with "," and alternatives with a space (e.g. "cuda>=12.0 brand=tesla,arch>=8.0")',
  });
}

/** One term of a predicate; NvrError('INPUT') naming `source` and the predicate when it is not one. */
export function parseTerm(text: string, source: string, predicate: string): RequireTerm {
  const opAt = text.search(OP_CHARS);
  if (opAt <= 0) throw invalid(source, predicate, text, opAt < 0 ? 'has no operator' : 'has no key');
  const keyText = text.slice(0, opAt).toLowerCase();
  const opText = OP_RUN.exec(text.slice(opAt))![0];
  const value = text.slice(opAt + opText.length);
  if (!(KEYS as readonly string[]).includes(keyText)) {
    throw invalid(source, predicate, text, `has an unknown key (keys: ${KEYS.join(', ')})`);
  }
  if (!(OPS as readonly string[]).includes(opText)) {
    throw invalid(source, predicate, text, `has an invalid operator ${quote(opText)} (operators: ${OPS.join(' ')})`);
  }
  if (value === '') throw invalid(source, predicate, text, 'has no value');
  const key = keyText as RequireKey;
  const op = opText as RequireOp;
  if (key === 'brand') {
    if (op !== '=' && op !== '!=') throw invalid(source, predicate, text, 'compares a brand, which allows only = and !=');
  } else if (!DOTTED_NUMBER.test(value)) {
    throw invalid(source, predicate, text, `compares ${key} with something that is not a dotted number`);
  }
  return { key, op, value, text };
}

/** Split one predicate into alternatives of terms (never throws: terms are read when evaluated). */
export function parseRequirement(predicate: string, source = ''): Requirement {
  const text = predicate.trim();
  const groups = text
    .split(' ')
    .map((group) => group.split(',').filter((t) => t !== ''))
    .filter((g) => g.length > 0);
  return { text, groups, source };
}

/** Every term of a predicate read now, for a check of its syntax (explain, tests); throws like parseTerm. */
export function parseAllTerms(req: Requirement): RequireTerm[][] {
  return req.groups.map((g) => g.map((t) => parseTerm(t, req.source, req.text)));
}

/**
 * Compare dotted numbers: trailing `.0`s are ignored (12 == 12.0) and a shorter prefix is less
 * (12.4 < 12.4.1). Components compare as unbounded integers. Both must match DOTTED_NUMBER.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string): string[] => {
    const p = v.split('.').map((c) => c.replace(/^0+(?=\d)/, ''));
    while (p.length > 0 && p[p.length - 1] === '0') p.pop();
    return p;
  };
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x.length !== y.length) return x.length < y.length ? -1 : 1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
