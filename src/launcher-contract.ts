/**
 * What the native launcher and this runtime must agree on, from one source (src/launcher-contract.json; the launcher
 * gets it as native/include/launcher_contract.h from scripts/gen-launcher-contract.mjs): runc's grammar as far as
 * interception depends on it, the spec size cap, where the launcher view lives and the trust bits.
 */
import { lstatSync, statSync, type BigIntStats } from 'node:fs';
import contract from './launcher-contract.json' with { type: 'json' };

export type FlagKind = 'value' | 'bool';
export interface FlagTable {
  kinds: Readonly<Record<string, FlagKind>>;
  /** short alias → canonical name */
  aliases: Readonly<Record<string, string>>;
}

export const SPEC_MAX_BYTES: number = contract.specMaxBytes;
export const VIEW_DIR: string = contract.viewDir;
export const VIEW_MAX_BYTES: number = contract.viewMaxBytes;
export const VIEW_MAGIC: string = contract.viewMagic;
/** Mode bits that make a file untrusted when it decides what runs as root (group/world-writable). */
export const UNTRUSTED_MODE_BITS: number = contract.untrustedModeBits;
export const DEFAULT_CONFIG_PATH: string = contract.defaultConfigPath;
export const CONFIG_PATH_ENV: string = contract.configPathEnv;
/** The caller's variables the launcher gives Node (an allowlist: nothing else reaches the root Node process). */
export const NODE_ENV: readonly string[] = contract.nodeEnv;
/** Names the sealed memfd holding the caller's whole environment, which runc gets unchanged. */
export const CALLER_ENV_FD_VAR: string = contract.callerEnvFdVar;
/** The warm path (docs/performance.md): the service's socket, the first record of every message, how long the
 *  launcher waits for an answer before it runs the cold path, and the largest message either side accepts. */
export const SERVE_SOCKET: string = contract.serveSocket;
export const SERVE_MAGIC: string = contract.serveMagic;
export const SERVE_DEADLINE_MS: number = contract.serveDeadlineMs;
export const SERVE_MAX_MESSAGE_BYTES: number = contract.serveMaxMessageBytes;
/** Byte strings without which a spec is never a GPU container (config.toml adds its annotation prefixes). */
export const GPU_MARKERS: readonly string[] = Object.freeze([...contract.gpuMarkers]);

export const GLOBAL_FLAGS = contract.globalFlags as FlagTable;
export const CREATE_VERB_FLAGS = contract.createVerbs as Readonly<Record<'create' | 'run', FlagTable>>;
export const EXEC_FLAGS = contract.execFlags as FlagTable;
export const PASS_THROUGH_VERBS: readonly string[] = contract.passThroughVerbs;

/**
 * A file's identity as the launcher compares it (native/launcher/launcher.c `identity`): stat(2) following links,
 * "dev,ino,mode,uid,size,mtime_ns,ctime_ns"; "-" when the path does not exist. Any change to the file, its mode or
 * owner, or a rename over it changes the identity.
 */
export function identityOf(st: BigIntStats): string {
  return [st.dev, st.ino, st.mode, st.uid, st.size, st.mtimeNs, st.ctimeNs].join(',');
}

/** identityOf(stat(path)), "-" when absent, undefined when it cannot be stat'ed otherwise (never matches). */
export function statIdentity(path: string): string | undefined {
  try {
    return identityOf(statSync(path, { bigint: true }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? '-' : undefined;
  }
}

/** identityOf(lstat(path)) (a link itself, a device node): "-" when absent, undefined when unreadable otherwise. */
export function lstatIdentity(path: string): string | undefined {
  try {
    return identityOf(lstatSync(path, { bigint: true }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? '-' : undefined;
  }
}

/** The one trust rule for files that decide what runs as root: owned by root (or by us), writable by nobody else. */
export function isTrusted(st: { uid: number | bigint; mode: number | bigint }, euid: number): boolean {
  const uid = Number(st.uid);
  return (uid === 0 || uid === euid) && (Number(st.mode) & UNTRUSTED_MODE_BITS) === 0;
}
