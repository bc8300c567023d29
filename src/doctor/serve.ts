/**
 * Doctor, the warm path (docs/warm-path.md): is `nvidia-runtime serve` listening on its socket, does the socket pass
 * the launcher's own trust rule (a socket, owned by root or us, not group/world-writable, in a trusted directory),
 * and does it answer in the protocol within the launcher's deadline? The probe asks about a verb the service never
 * plans (`state`), so the answer is always `cold` and nothing is planned or written. No socket is no problem: the
 * cold path runs, which is an INFO line.
 */
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { isTrusted, SERVE_DEADLINE_MS, SERVE_SOCKET } from '../launcher-contract.js';
import { formatRequest, parseAnswer } from '../serve/protocol.js';
import { trustProblem } from '../trust.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

export interface ServeFacts {
  socket: string;
  /** 'absent', 'socket', or what else is there. */
  kind: 'absent' | 'socket' | 'other';
  /** Why the launcher would not use it; undefined when it would. */
  untrusted?: string;
  /** The probe's outcome. */
  answer?: { ok: true; ms: number } | { ok: false; reason: string };
}

/** One request/answer over the socket, bounded by `deadlineMs`. */
export function probeService(socket: string, deadlineMs: number): Promise<{ ok: true; ms: number } | { ok: false; reason: string }> {
  return new Promise((done) => {
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    let settled = false;
    const s = connect(socket);
    const finish = (r: { ok: true; ms: number } | { ok: false; reason: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      done(r);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${deadlineMs} ms (the launcher's deadline)` }), deadlineMs);
    s.on('connect', () => s.end(formatRequest({ cwd: '/', configPath: undefined, path: undefined, args: ['state', 'nvidia-ctk-doctor'] })));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: `cannot connect (${e.code ?? e.message})` }));
    s.on('end', () => {
      const parsed = parseAnswer(Buffer.concat(chunks));
      if (!parsed.ok) finish({ ok: false, reason: chunks.length === 0 ? 'closed without answering (a peer it does not accept?)' : `malformed answer: ${parsed.reason}` });
      else finish({ ok: true, ms: Math.round(performance.now() - t0) });
    });
  });
}

export async function gatherServe(socket = SERVE_SOCKET, deadlineMs = SERVE_DEADLINE_MS): Promise<ServeFacts> {
  let st;
  try {
    st = lstatSync(socket);
  } catch {
    return { socket, kind: 'absent' };
  }
  if (!st.isSocket()) return { socket, kind: 'other' };
  const euid = process.geteuid?.() ?? 0;
  const dir = trustProblem(dirname(socket), { directory: true, euid });
  const untrusted = !isTrusted(st, euid)
    ? `${socket} is owned by uid ${st.uid} or writable by others (mode ${(st.mode & 0o777).toString(8)})`
    : dir?.problem;
  return { socket, kind: 'socket', ...(untrusted ? { untrusted } : {}), answer: await probeService(socket, deadlineMs) };
}

export function checkServe(f: ServeFacts): CheckResult {
  const id = 'serve';
  const details = { socket: f.socket, kind: f.kind, untrusted: f.untrusted ?? null, answer: f.answer ?? null };
  if (f.kind === 'absent') return info(id, `no warm-path service (${f.socket} absent): GPU creates take the cold path (Node per create)`, { details });
  if (f.kind === 'other') return fail(id, `${f.socket} exists but is not a socket: the service cannot start there`, `remove ${f.socket}, then systemctl restart nvidia-runtime.socket`, details);
  if (f.untrusted) return warn(id, `${f.socket}: the launcher does not use it (${f.untrusted}), so every GPU create takes the cold path`, `chown root ${f.socket} && chmod 0600 ${f.socket} (systemd/nvidia-runtime.socket creates it so), and make ${dirname(f.socket)} root-owned 0755`, details);
  if (!f.answer?.ok) {
    return warn(id, `${f.socket}: the service does not answer: ${f.answer?.reason ?? 'unknown'}; every GPU create waits for it, then takes the cold path`,
      'systemctl restart nvidia-runtime.service (journalctl -u nvidia-runtime.service says why it fails), or stop it: systemctl disable --now nvidia-runtime.socket', details);
  }
  return pass(id, `warm-path service answers on ${f.socket} in ${f.answer.ms} ms`, { details });
}
