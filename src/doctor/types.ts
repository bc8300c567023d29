/**
 * `nvidia-ctk doctor`'s vocabulary: one result per check, four statuses, and the report (docs/doctor.md).
 * Check functions return results; they never print and never decide the exit code.
 */

/** PASS: fine. INFO: a fact worth knowing, never a problem (an engine not installed, the cold path in use).
 *  WARN: works, but something will bite (persistence mode off, a stale spec). FAIL: something is broken. */
export type CheckStatus = 'PASS' | 'INFO' | 'WARN' | 'FAIL';
export const CHECK_STATUSES: readonly CheckStatus[] = ['PASS', 'INFO', 'WARN', 'FAIL'];

export interface CheckResult {
  /** Stable, dotted: `driver.nvml`, `config.trust`, `cdi.spec./etc/cdi/nvidia.yaml`, `engine.docker`. */
  id: string;
  status: CheckStatus;
  /** One line: what was checked and what was found. */
  message: string;
  /** For WARN and FAIL: what to do, one line. */
  fix?: string;
  /** Machine-readable facts behind the message (the `--json` output carries them). */
  details?: Record<string, unknown>;
}

export interface DoctorSummary {
  pass: number;
  info: number;
  warn: number;
  fail: number;
  /** No FAIL: the exit code is 0. */
  ok: boolean;
}

export interface DoctorReport {
  checks: CheckResult[];
  summary: DoctorSummary;
}

type Extra = { fix?: string; details?: Record<string, unknown> };
const make = (status: CheckStatus) => (id: string, message: string, extra: Extra = {}): CheckResult => ({
  id,
  status,
  message,
  ...(extra.fix !== undefined && status !== 'PASS' && status !== 'INFO' ? { fix: extra.fix } : {}),
  ...(extra.details !== undefined ? { details: extra.details } : {}),
});
export const pass = make('PASS');
export const info = make('INFO');
export const warn = (id: string, message: string, fix: string, details?: Record<string, unknown>): CheckResult =>
  make('WARN')(id, message, { fix, ...(details ? { details } : {}) });
export const fail = (id: string, message: string, fix: string, details?: Record<string, unknown>): CheckResult =>
  make('FAIL')(id, message, { fix, ...(details ? { details } : {}) });

export function summarize(checks: readonly CheckResult[]): DoctorSummary {
  const count = (s: CheckStatus): number => checks.filter((c) => c.status === s).length;
  return { pass: count('PASS'), info: count('INFO'), warn: count('WARN'), fail: count('FAIL'), ok: count('FAIL') === 0 };
}

/** The text form: `STATUS id: message`, then `  fix: …` for WARN/FAIL, then the summary line. */
export function formatReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${c.status} ${c.id}: ${c.message}`);
    if (c.fix !== undefined) lines.push(`  fix: ${c.fix}`);
  }
  const s = report.summary;
  lines.push(`${s.ok ? 'OK' : 'PROBLEMS FOUND'}: ${s.pass} pass, ${s.info} info, ${s.warn} warn, ${s.fail} fail`);
  return lines.join('\n') + '\n';
}
