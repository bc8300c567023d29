/**
 * The launcher view: what the native launcher needs from this runtime's decisions, so that it never reads
 * config.toml or looks for runc itself (one parser, one lookup). It holds the runc we chose and the GPU markers of
 * this configuration, keyed on what those decisions depended on — the euid, the config file path and PATH — and
 * stamped with the identity of every file they read (the config file, every path the runc lookup stat'ed). The
 * launcher uses a view only when it is root-owned, not writable by others, and every identity still matches;
 * otherwise it hands the call to us, and we write a fresh view. Disagreement is impossible by construction: the
 * launcher only replays our answer while its inputs are provably unchanged.
 *
 * Format (native/launcher/launcher.c `load_view`), NUL-terminated records: the magic, `u<euid>`, `c<config path>`,
 * `p<PATH>` or `P` (unset), `f<identity>:<path>` per fingerprint, `r<runc>`, `m<marker>` per marker, `.` last.
 */
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTrusted, VIEW_DIR, VIEW_MAGIC, VIEW_MAX_BYTES } from '../launcher-contract.js';
import { writeFileAtomic } from '../oci/atomic-write.js';
import type { Consulted } from './find-runc.js';

export interface ViewKey {
  euid: number;
  /** The config file path as the launcher computes it ($NVIDIA_CTK_CONFIG_FILE_PATH or the default). */
  configPath: string;
  /** $PATH, undefined when unset. */
  envPath: string | undefined;
}

export interface LauncherView extends ViewKey {
  /** Identities the answer depends on, the config file first. */
  fingerprints: Consulted[];
  /** Absolute path of the validated low-level runtime. */
  runc: string;
  markers: string[];
}

function keyRecords(key: ViewKey): string[] {
  return [`u${key.euid}`, `c${key.configPath}`, key.envPath === undefined ? 'P' : `p${key.envPath}`];
}

/** `<16 hex digits of FNV-1a 64 over the key records>.view`, as the launcher computes it. */
export function viewFileName(key: ViewKey): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(keyRecords(key).map((r) => `${r}\0`).join(''), 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return `${h.toString(16).padStart(16, '0')}.view`;
}

/** The file's bytes, or undefined when this view cannot be expressed (a NUL in a field, too large, nothing known). */
export function renderView(view: LauncherView): Buffer | undefined {
  const records = [
    VIEW_MAGIC,
    ...keyRecords(view),
    ...view.fingerprints.map((f) => `f${f.identity}:${f.path}`),
    `r${view.runc}`,
    ...view.markers.map((m) => `m${m}`),
    '.',
  ];
  if (records.some((r) => r.includes('\0')) || view.markers.length === 0 || !view.runc.startsWith('/')) return undefined;
  if (view.fingerprints.some((f) => !f.path.startsWith('/') || f.identity.includes(':'))) return undefined;
  const bytes = Buffer.from(records.map((r) => `${r}\0`).join(''), 'utf8');
  return bytes.length <= VIEW_MAX_BYTES ? bytes : undefined;
}

/**
 * Writes the view when it differs from what is there. Best effort: a view that cannot be written (not root, a
 * read-only /run, an untrusted directory) only means the launcher keeps asking us. Returns what happened.
 */
export function writeLauncherView(view: LauncherView, dir = VIEW_DIR): 'written' | 'unchanged' | 'skipped' {
  const bytes = renderView(view);
  if (!bytes) return 'skipped';
  const file = join(dir, viewFileName(view));
  try {
    if (readFileSync(file).equals(bytes)) return 'unchanged';
  } catch {
    // absent or unreadable: write it
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || !isTrusted(st, view.euid)) return 'skipped';
    writeFileAtomic(file, bytes, { mode: 0o644 });
    return 'written';
  } catch {
    return 'skipped';
  }
}
