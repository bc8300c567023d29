/**
 * `nvidia-ctk runtime configure`: registers nvidia-runtime with Docker, containerd or CRI-O (docs/engines.md).
 * planConfigure reads the files and computes the new contents with the pure engine functions; applyChanges backs
 * up and writes atomically. A file whose content would not change is not in the plan: a re-run writes nothing.
 */
import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { NvrError } from '../errors.js';
import { writeFileAtomic } from '../oci/atomic-write.js';
import { backupFile } from './backup.js';
import {
  addContainerdImport, configureContainerd, configVersionForContainerd, containerdConfigVersion, containerdDropIn,
  formatToml, parseToml, removeContainerdImport, unconfigureContainerd, type TomlTable,
} from './containerd.js';
import { configureCrio, unconfigureCrio } from './crio.js';
import { configureDocker, formatDaemonJson, parseDaemonJson, unconfigureDocker } from './docker.js';

export type EngineName = 'docker' | 'containerd' | 'crio';
export const ENGINES: readonly EngineName[] = ['docker', 'containerd', 'crio'];

export interface EngineOptions {
  runtimeName: string;
  /** Absolute path of nvidia-runtime. */
  runtimePath: string;
  setAsDefault: boolean;
  cdiEnabled: boolean;
}

export const DEFAULT_RUNTIME_NAME = 'nvidia';
export const DEFAULT_RUNTIME_PATH = '/usr/bin/nvidia-runtime';
export const DEFAULT_CONFIG_FILE: Record<EngineName, string> = {
  docker: '/etc/docker/daemon.json',
  containerd: '/etc/containerd/config.toml',
  crio: '/etc/crio/crio.conf',
};
export const DEFAULT_DROP_IN: Record<EngineName, string | null> = {
  docker: null,
  containerd: '/etc/containerd/conf.d/99-nvidia.toml',
  crio: '/etc/crio/crio.conf.d/99-nvidia.toml',
};

export interface ConfigureRequest extends EngineOptions {
  engine: EngineName;
  configFile: string;
  /** Where our settings go instead of the main file (containerd, CRI-O); null: edit the main file. */
  dropInFile: string | null;
  uninstall: boolean;
  /**
   * containerd: the runtime's `[nvidia-container-runtime.modes.cdi] annotation-prefixes`. containerd passes a
   * pod's annotations to the runtime only when its handler lists them in `container_annotations`.
   */
  cdiAnnotationPrefixes: readonly string[];
}

/** One file to change. `after: null` removes it; `backup`: keep a copy of the replaced file first. */
export interface FileChange {
  file: string;
  before: string | null;
  after: string | null;
  backup: boolean;
}

export interface ConfigureDeps {
  /** The file's text, or null when it does not exist. */
  readFile: (file: string) => string | null;
  /** `containerd --version` output, or undefined when containerd is not installed. */
  containerdVersion: () => string | undefined;
}

/** A config file is a few KiB; refuse to parse anything absurd. */
const MAX_FILE_BYTES = 4 << 20;

export function readConfigFile(file: string): string | null {
  try {
    const st = nodeFs.statSync(file);
    if (!st.isFile()) throw new NvrError('INPUT', `${file} is not a regular file`, { fix: 'name the engine config file with --config' });
    if (st.size > MAX_FILE_BYTES) throw new NvrError('INPUT', `${file} is too large (${st.size} bytes) for a config file`, { fix: 'name the engine config file with --config' });
    return nodeFs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (e instanceof NvrError) throw e;
    throw new NvrError('IO', `reading ${file} failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { fix: 'run as root, or name a readable file with --config', cause: e });
  }
}

export function containerdVersionOutput(exec: (cmd: string, args: string[]) => string): string | undefined {
  try {
    return exec('containerd', ['--version']);
  } catch {
    return undefined; // not installed (or not runnable): the documented fallback is config version 2
  }
}

export const defaultConfigureDeps: ConfigureDeps = {
  readFile: readConfigFile,
  containerdVersion: () =>
    containerdVersionOutput((cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'ignore'] })),
};

/** Handler names become Kubernetes RuntimeClass handlers (a DNS label) for containerd and CRI-O. */
export function validateRequest(req: ConfigureRequest): void {
  const label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  const dockerName = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
  if (!(req.engine === 'docker' ? dockerName : label).test(req.runtimeName)) {
    throw new NvrError('INPUT', `--nvidia-runtime-name "${req.runtimeName}" is not a valid ${req.engine} runtime name`, {
      fix: req.engine === 'docker' ? 'use letters, digits, "_", "." and "-"' : 'use a DNS label: lowercase letters, digits and "-" (it is the RuntimeClass handler name)',
    });
  }
  if (req.runtimeName === 'runc') {
    throw new NvrError('INPUT', '--nvidia-runtime-name "runc" is reserved for the default runtime', { fix: 'use another name, e.g. nvidia' });
  }
  if (!isAbsolute(req.runtimePath) || /[\0\n\r]/.test(req.runtimePath)) {
    throw new NvrError('INPUT', `--nvidia-runtime-path "${req.runtimePath}" is not an absolute path`, { fix: `give the absolute path of nvidia-runtime, e.g. ${DEFAULT_RUNTIME_PATH}` });
  }
  if (req.engine === 'docker' && req.dropInFile !== null) {
    throw new NvrError('INPUT', '--drop-in-config is not supported for docker', { fix: 'docker has a single daemon.json; drop --drop-in-config' });
  }
}

function change(file: string, before: string | null, after: string | null, same: boolean, backup: boolean): FileChange[] {
  if (same || (before === null && after === null)) return [];
  return [{ file, before, after, backup: backup && before !== null }];
}

function planDocker(req: ConfigureRequest, deps: ConfigureDeps): FileChange[] {
  const before = deps.readFile(req.configFile);
  const doc = before === null ? {} : parseDaemonJson(before, req.configFile);
  const next = req.uninstall ? unconfigureDocker(doc, req) : configureDocker(doc, req);
  return change(req.configFile, before, formatDaemonJson(next), JSON.stringify(next) === JSON.stringify(doc), true);
}

/** Reads a TOML file: null when missing, an empty table for an empty file. */
function readToml(file: string, deps: ConfigureDeps): { text: string | null; doc: TomlTable } {
  const text = deps.readFile(file);
  return { text, doc: text === null ? {} : parseToml(text, file) };
}

function tomlChange(file: string, before: { text: string | null; doc: TomlTable }, next: TomlTable | null, backup: boolean): FileChange[] {
  if (next === null) return change(file, before.text, null, before.text === null, false);
  const after = formatToml(next);
  return change(file, before.text, after, formatToml(before.doc) === after, backup);
}

function planContainerd(req: ConfigureRequest, deps: ConfigureDeps): FileChange[] {
  const main = readToml(req.configFile, deps);
  const dropInPath = req.dropInFile ?? DEFAULT_DROP_IN.containerd!;
  if (req.uninstall) {
    // Whichever mode configured it: our handler and import leave the main file, then the drop-in goes (in that
    // order, so that the main file never imports a missing file).
    const dropIn = readToml(dropInPath, deps);
    const next = removeContainerdImport(unconfigureContainerd(main.doc, req), dropInPath);
    return [...tomlChange(req.configFile, main, next, true), ...tomlChange(dropInPath, dropIn, null, false)];
  }
  const version = containerdConfigVersion(main.doc, req.configFile, main.doc.version === undefined ? configVersionForContainerd(deps.containerdVersion()) : 2);
  const configured = configureContainerd(main.doc, { ...req, version, file: req.configFile });
  if (req.dropInFile === null) return tomlChange(req.configFile, main, configured, true);
  const dropIn = readToml(req.dropInFile, deps);
  return [
    ...tomlChange(req.dropInFile, dropIn, containerdDropIn(configured, version), false),
    ...tomlChange(req.configFile, main, addContainerdImport(main.doc, req.dropInFile, version, req.configFile), true),
  ];
}

function planCrio(req: ConfigureRequest, deps: ConfigureDeps): FileChange[] {
  const dropInPath = req.dropInFile ?? DEFAULT_DROP_IN.crio!;
  if (req.uninstall) {
    const main = readToml(req.configFile, deps);
    return [...tomlChange(dropInPath, readToml(dropInPath, deps), null, false), ...tomlChange(req.configFile, main, unconfigureCrio(main.doc, req), true)];
  }
  const target = req.dropInFile ?? req.configFile;
  const current = readToml(target, deps);
  return tomlChange(target, current, configureCrio(current.doc, { ...req, file: target }), req.dropInFile === null);
}

/** The files `req` changes and their new contents; nothing is written. */
export function planConfigure(req: ConfigureRequest, deps: ConfigureDeps = defaultConfigureDeps): FileChange[] {
  validateRequest(req);
  const planners: Record<EngineName, (r: ConfigureRequest, d: ConfigureDeps) => FileChange[]> = { docker: planDocker, containerd: planContainerd, crio: planCrio };
  return planners[req.engine](req, deps);
}

export interface ApplyDeps {
  backup: (file: string) => string;
  write: (file: string, text: string) => void;
  remove: (file: string) => void;
}

export const defaultApplyDeps: ApplyDeps = {
  backup: (file) => backupFile(file),
  write: (file, text) => {
    nodeFs.mkdirSync(dirname(resolve(file)), { recursive: true, mode: 0o755 });
    writeFileAtomic(file, text);
  },
  remove: (file) => {
    try {
      nodeFs.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new NvrError('IO', `removing ${file} failed (${(e as NodeJS.ErrnoException).code})`, { fix: 'run as root', cause: e });
      }
    }
  },
};

/** One line per file, in the order done. */
export function applyChanges(changes: FileChange[], deps: ApplyDeps = defaultApplyDeps): string[] {
  const done: string[] = [];
  for (const c of changes) {
    const backup = c.backup ? deps.backup(c.file) : undefined;
    if (c.after === null) deps.remove(c.file);
    else deps.write(c.file, c.after);
    done.push(`${c.after === null ? 'Removed' : c.before === null ? 'Created' : 'Updated'} ${c.file}${backup ? ` (previous content saved as ${backup})` : ''}`);
  }
  return done;
}

/** What `--dry-run` prints: each file's new content under a header naming it. */
export function formatDryRun(changes: FileChange[]): string {
  return changes.map((c) => (c.after === null ? `# ${c.file}: would be removed\n` : `# ${c.file}\n${c.after}`)).join('\n');
}

/** How to make the engine pick up the change. */
export function nextSteps(engine: EngineName, req: Pick<ConfigureRequest, 'cdiEnabled' | 'uninstall' | 'runtimeName'>): string[] {
  const out: string[] = [];
  if (engine === 'docker') {
    out.push('Reload dockerd to apply: `kill -HUP $(pidof dockerd)` (runtimes and default-runtime reload on SIGHUP) or `systemctl restart docker`.');
    if (req.cdiEnabled && !req.uninstall) out.push('features.cdi takes effect only when dockerd restarts: `systemctl restart docker`.');
    if (!req.uninstall) out.push(`Then: docker run --rm --runtime=${req.runtimeName} -e NVIDIA_VISIBLE_DEVICES=all IMAGE nvidia-smi`);
  } else if (engine === 'containerd') {
    out.push('Restart containerd to apply: `systemctl restart containerd` (running containers keep running).');
    if (!req.uninstall) out.push(`Kubernetes: a RuntimeClass with handler: ${req.runtimeName} selects it.`);
  } else {
    out.push('Restart CRI-O to apply: `systemctl restart crio`.');
    if (req.cdiEnabled && !req.uninstall) out.push('CRI-O always reads CDI specs (from /etc/cdi and /var/run/cdi): --cdi.enabled changes nothing there.');
    if (!req.uninstall) out.push(`Kubernetes: a RuntimeClass with handler: ${req.runtimeName} selects it.`);
  }
  return out;
}
