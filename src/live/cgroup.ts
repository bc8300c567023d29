/**
 * Which device cgroup a running container is in: the cgroup v1 `devices` directory of its init process, from
 * /proc/<pid>/cgroup and our mountinfo. On a cgroup v2-only host device access is a BPF program attached by the
 * runtime; we do not replace it, and say so in one line that names --no-cgroups.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { NvrError } from '../errors.js';

/** The v1 hierarchy path of the `devices` controller in a /proc/<pid>/cgroup text, or undefined when it has none. */
export function devicesCgroupPath(procCgroup: string): string | undefined {
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m && m[1]!.split(',').includes('devices')) return m[2]!;
  }
  return undefined;
}

export interface CgroupMount {
  /** The path inside the hierarchy that is mounted (mountinfo field 4). */
  root: string;
  mountPoint: string;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The v1 `devices` hierarchy mounts in a mountinfo text. */
export function devicesCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const fields = line.slice(0, sep).split(' ');
    if (fstype === 'cgroup' && superOptions.split(',').includes('devices')) out.push({ root: unescape(fields[3]!), mountPoint: unescape(fields[4]!) });
  }
  return out;
}

/** The directory whose devices.allow governs the process: a mount whose root contains its cgroup path. */
export function devicesCgroupDir(procCgroup: string, mountinfo: string, pid: string): string {
  const path = devicesCgroupPath(procCgroup);
  if (path === undefined) {
    throw new NvrError('INPUT', `process ${pid} has no cgroup v1 devices controller (a cgroup v2 host): device access there is a BPF program owned by the container runtime, which nvidia-container-cli does not replace`, {
      fix: 'pass --no-cgroups (with docker, use --runtime=nvidia: the devices are then in the OCI spec), or configure the container\'s device rules yourself',
    });
  }
  for (const m of devicesCgroupMounts(mountinfo)) {
    const rel = posix.relative(m.root, path);
    if (rel === '..' || rel.startsWith('../') || posix.isAbsolute(rel)) continue;
    return posix.join(m.mountPoint, rel);
  }
  throw new NvrError('INPUT', `the devices cgroup ${path} of process ${pid} is not mounted here`, {
    fix: 'mount the cgroup v1 devices hierarchy (e.g. on /sys/fs/cgroup/devices) or pass --no-cgroups',
  });
}

export function readDevicesCgroupDir(pid: string): string {
  let procCgroup: string;
  try {
    procCgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (e) {
    throw new NvrError('INPUT', `--pid ${pid}: /proc/${pid}/cgroup: ${(e as Error).message}`, { fix: 'pass the pid of the container\'s init process' });
  }
  return devicesCgroupDir(procCgroup, readFileSync('/proc/self/mountinfo', 'utf8'), pid);
}

export function readDevicesList(dir: string): string {
  try {
    return readFileSync(posix.join(dir, 'devices.list'), 'utf8');
  } catch (e) {
    throw new NvrError('INPUT', `${dir}/devices.list: ${(e as Error).message}`, { fix: 'pass --no-cgroups where the container\'s device cgroup is not ours to read' });
  }
}

/** Whether a devices.list (cgroup v1: "a *:* rwm", "c 195:* rwm", "c 195:0 rw" lines) already grants a rule. */
export function ruleCovered(list: string, rule: string): boolean {
  const [type, majMin = '', access = ''] = rule.split(' ');
  const [maj, min] = majMin.split(':');
  return list.split('\n').some((line) => {
    const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(line.trim());
    if (!m) return false;
    const [, t, lmaj, lmin, laccess] = m;
    return (t === 'a' || t === type) && (lmaj === '*' || lmaj === maj) && (lmin === '*' || lmin === min) && [...access].every((c) => laccess!.includes(c));
  });
}

/** The plan without the `allow` words whose rule the cgroup already grants. */
export function withoutCoveredRules(words: readonly string[], list: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] === 'allow' && ruleCovered(list, words[i + 1]!)) i++;
    else out.push(words[i]!);
  }
  return out;
}

/** True when this process runs in a user namespace other than the initial one (its uid_map is not the identity). */
export function inUserNamespace(uidMap: string = readFileSync('/proc/self/uid_map', 'utf8')): boolean {
  return uidMap.trim().split(/\s+/).join(' ') !== '0 0 4294967295';
}
