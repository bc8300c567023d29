/**
 * specDiff — a unified-style line diff of two specs, pretty-printed with the same lossless serializer, for
 * `nvidia-ctk explain`. A plain LCS on the lines between the common prefix and suffix is enough for specs.
 */
import { serializeSpec } from '../oci/spec-file.js';
import type { OciSpec } from '../oci/types.js';

export interface DiffOptions {
  /** Unchanged lines shown around each change (default 3). */
  context?: number;
  fromLabel?: string;
  toLabel?: string;
}

type Op = { kind: ' ' | '-' | '+'; line: string };

/** Above this many LCS cells the middle is shown as a block replace instead (bounded memory). */
const MAX_LCS_CELLS = 4_000_000;

function lineOps(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const x = a.slice(pre, a.length - suf);
  const y = b.slice(pre, b.length - suf);
  const mid: Op[] = [];
  if (x.length * y.length > MAX_LCS_CELLS) {
    for (const line of x) mid.push({ kind: '-', line });
    for (const line of y) mid.push({ kind: '+', line });
  } else {
    // lcs[i][j] = LCS length of x[i..] and y[j..], flattened.
    const w = y.length + 1;
    const lcs = new Uint32Array((x.length + 1) * w);
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        mid.push({ kind: ' ', line: x[i++] });
        j++;
      } else if (i < x.length && (j === y.length || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
        mid.push({ kind: '-', line: x[i++] }); // deletions first on ties, as diff(1) prints them
      } else {
        mid.push({ kind: '+', line: y[j++] });
      }
    }
  }
  return [
    ...a.slice(0, pre).map((line): Op => ({ kind: ' ', line })),
    ...mid,
    ...a.slice(a.length - suf).map((line): Op => ({ kind: ' ', line })),
  ];
}

/** Unified diff of two line lists; '' when they are equal. */
export function diffLines(a: string[], b: string[], options: DiffOptions = {}): string {
  const context = options.context ?? 3;
  const ops = lineOps(a, b);
  const changed = ops.map((o, i) => (o.kind === ' ' ? -1 : i)).filter((i) => i >= 0);
  if (changed.length === 0) return '';
  const out = [`--- ${options.fromLabel ?? 'before'}`, `+++ ${options.toLabel ?? 'after'}`];
  // Group changes whose context windows touch into hunks.
  let k = 0;
  while (k < changed.length) {
    let end = changed[k];
    let next = k + 1;
    while (next < changed.length && changed[next] - end <= 2 * context + 1) end = changed[next++];
    const from = Math.max(0, changed[k] - context);
    const to = Math.min(ops.length - 1, end + context);
    // Line numbers (1-based) where the hunk starts in each side.
    let aLine = 1;
    let bLine = 1;
    for (let i = 0; i < from; i++) {
      if (ops[i].kind !== '+') aLine++;
      if (ops[i].kind !== '-') bLine++;
    }
    const hunk = ops.slice(from, to + 1);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${aCount ? aLine : aLine - 1},${aCount} +${bCount ? bLine : bLine - 1},${bCount} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
    k = next;
  }
  return out.join('\n') + '\n';
}

/** Readable diff of two specs (2-space JSON); '' when they serialise identically. */
export function specDiff(before: OciSpec, after: OciSpec, options: DiffOptions = {}): string {
  return diffLines(serializeSpec(before, 2).split('\n'), serializeSpec(after, 2).split('\n'), options);
}
