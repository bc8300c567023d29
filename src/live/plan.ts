/**
 * ContainerEdits → the live applier's plan (native/hook/apply.c): the same edits the runtime writes into a spec,
 * spelled as the operations that put them into a container that already exists. Pure: every choice (mknod or bind a
 * node, which cgroup rules, which flags) is made here, so the C side only executes.
 *
 * The plan is a list of NUL-terminated words: `mknod c MAJ MIN MODE PATH`, `bind FLAGS HOST PATH`, `allow RULE`,
 * and the ld cache refresh as `folder DIR`, `link TARGET LINK`, `ldconfig PATH`, `compat HOST_DRIVER_VERSION` (the
 * createContainer hooks' arguments, which the applier runs in-process after the mounts).
 */
import { NvrError } from '../errors.js';
import type { ContainerEdits, DeviceNode, Hook, Mount } from '../edits/types.js';

export interface LiveOptions {
  /** In a user namespace mknod is refused: nodes are bind-mounted from the host onto empty files instead. */
  bindNodes: boolean;
  /** Write device cgroup (v1) rules for the nodes; false for --no-cgroups. */
  cgroupRules: boolean;
  /** Create the device nodes; false for --no-devbind (the cgroup rules are still written). */
  nodes: boolean;
}

/** Mount options the applier can express (everything we mount is also rbind and private: always). */
const FLAG_OPTIONS = ['ro', 'nosuid', 'nodev', 'noexec'] as const;
const IMPLIED_OPTIONS = new Set(['bind', 'rbind', 'private', 'rprivate', 'rw']);
/** A device node bound from the host: usable (not nodev), never setuid or executable. */
const NODE_BIND_FLAGS = 'nosuid,noexec';

function bindFlags(m: Mount): string {
  const options = m.options ?? [];
  const unknown = options.filter((o) => !(FLAG_OPTIONS as readonly string[]).includes(o) && !IMPLIED_OPTIONS.has(o));
  if (unknown.length > 0 || (m.type !== undefined && m.type !== 'bind')) {
    throw new NvrError('INPUT', `mount of ${m.hostPath} on ${m.containerPath}: ${m.type && m.type !== 'bind' ? `type ${m.type}` : `options ${unknown.join(',')}`} cannot be applied to a running container`, {
      fix: 'only read-only/nosuid/nodev/noexec bind mounts can be added live',
    });
  }
  const flags = FLAG_OPTIONS.filter((f) => options.includes(f));
  if (!flags.includes('nosuid')) flags.splice(flags.includes('ro') ? 1 : 0, 0, 'nosuid');
  return flags.join(',');
}

function nodeWords(n: DeviceNode, opts: LiveOptions): string[] {
  if (n.type !== 'c' && n.type !== 'b') throw new NvrError('INPUT', `device node ${n.path}: type ${n.type ?? '(none)'} cannot be created live`, { fix: 'only c and b nodes can be added' });
  if (n.major === undefined || n.minor === undefined) throw new NvrError('INPUT', `device node ${n.path}: no major:minor`, { fix: 'fill the node from the host first' });
  const words: string[] = [];
  if (opts.nodes) {
    words.push(...(opts.bindNodes
      ? ['bind', NODE_BIND_FLAGS, n.hostPath ?? n.path, n.path]
      : ['mknod', n.type, String(n.major), String(n.minor), ((n.fileMode ?? 0o666) & 0o777).toString(8), n.path]));
  }
  const access = n.permissions ?? 'rwm';
  if (opts.cgroupRules && access !== 'none' && access !== '') words.push('allow', `${n.type} ${n.major}:${n.minor} ${access}`);
  return words;
}

/** The createContainer hooks we build (edits/build.ts ldcacheHook, linksHook) as ld cache words; any other hook is
 *  refused. */
function hookWords(h: Hook): string[] {
  const args = h.args ?? [];
  if (args[0] !== 'nvidia-runtime-hook' || (args[1] !== 'update-ldcache' && args[1] !== 'create-symlinks')) {
    throw new NvrError('INPUT', `hook ${h.path} ${args.slice(1).join(' ')} cannot run in a running container`, { fix: 'only the ld cache refresh is applied live' });
  }
  const words: string[] = [];
  for (let i = 2; i + 1 < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]!];
    if (flag === '--folder' && args[1] === 'update-ldcache') words.push('folder', value);
    else if (flag === '--ldconfig' && args[1] === 'update-ldcache') words.push('ldconfig', value);
    else if (flag === '--cuda-compat' && args[1] === 'update-ldcache') words.push('compat', value);
    else if (flag === '--link') {
      const at = value.indexOf('::');
      if (at <= 0) throw new NvrError('INPUT', `hook ${h.path}: --link ${JSON.stringify(value)} is not TARGET::LINK`, { fix: 'write the link as TARGET::/path/of/link' });
      words.push('link', value.slice(0, at), value.slice(at + 2));
    } else if (flag !== '--root') { // --root: the applier is told the rootfs itself
      throw new NvrError('INPUT', `hook ${h.path}: ${args[1]} ${flag} cannot be applied to a running container`, { fix: 'only --folder, --link, --ldconfig and --cuda-compat are applied live' });
    }
  }
  return words;
}

/** The applier's plan for these edits. env is not applied: a container's environment is fixed when it is made. */
export function livePlan(edits: ContainerEdits, opts: LiveOptions): string[] {
  const words: string[] = [];
  for (const n of edits.deviceNodes ?? []) words.push(...nodeWords(n, opts));
  for (const m of edits.mounts ?? []) words.push('bind', bindFlags(m), m.hostPath, m.containerPath);
  for (const h of edits.hooks ?? []) words.push(...hookWords(h));
  return words;
}

/** The bytes on the applier's stdin. A NUL inside a word would shift every word after it: refused. */
export function encodePlan(words: readonly string[]): Buffer {
  for (const w of words) if (w.includes('\0')) throw new NvrError('INPUT', `plan word ${JSON.stringify(w)} contains a NUL byte`, { fix: 'paths cannot contain NUL' });
  return Buffer.from(words.map((w) => `${w}\0`).join(''), 'utf8');
}
