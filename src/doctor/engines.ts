/**
 * Doctor, engine registrations: Docker's daemon.json `runtimes.nvidia`, containerd's `nvidia` handler (main
 * config.toml and the files it imports, e.g. the conf.d drop-in), CRI-O's handler (crio.conf and crio.conf.d), and
 * podman, which needs no registration but a CDI spec. Files are parsed with the project's engine parsers
 * (src/engines/); an engine that is neither on PATH nor configured is "not installed", an INFO, never a failure.
 * Each engine's cgroup driver is recorded too: with systemd, GPUs need /dev/char links (cgroup.ts).
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { containerdConfigVersion, CRI_PLUGIN, findTable, globMatches, isTable, parseToml, type TomlTable } from '../engines/containerd.js';
import { DEFAULT_CONFIG_FILE, readConfigFile } from '../engines/configure.js';
import { parseDaemonJson, type JsonObject } from '../engines/docker.js';
import { NvrError } from '../errors.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

export type DoctorEngine = 'docker' | 'containerd' | 'crio' | 'podman';
export const DOCTOR_ENGINES: readonly DoctorEngine[] = ['docker', 'containerd', 'crio', 'podman'];
/** The binary whose presence on PATH says the engine is installed. */
const BINARY: Record<DoctorEngine, string> = { docker: 'dockerd', containerd: 'containerd', crio: 'crio', podman: 'podman' };
/** Runtime executables that are a registration of NVIDIA's runtime: ours, or the toolkit's name for it. */
const OUR_RUNTIMES = ['nvidia-runtime', 'nvidia-container-runtime'];
export const RUNTIME_NAME = 'nvidia';

export interface Registration {
  /** The handler/runtime name in the engine's config. */
  name: string;
  /** The executable it runs. */
  path: string;
  /** Where it was found. */
  file: string;
  /** The executable exists and is executable. */
  executable: boolean;
  isDefault: boolean;
}

export interface EngineFact {
  engine: DoctorEngine;
  installed: boolean;
  /** Binary found on PATH, if any. */
  binary?: string;
  /** Config files read, in the engine's order. */
  files: string[];
  registration?: Registration;
  error?: NvrError;
  /** true: the engine has systemd manage container cgroups; undefined: not known / not relevant. */
  systemdCgroup?: boolean;
  systemdWhy?: string;
  annotations?: HandlerAnnotations;
}

/** containerd: the annotation globs our handler passes to the runtime, and whether containerd resolves CDI itself. */
export interface HandlerAnnotations {
  passed: string[];
  cdiEnabled: boolean;
}

export interface EngineOptions {
  env: Readonly<Record<string, string | undefined>>;
  dockerConfig?: string;
  containerdConfig?: string;
  crioConfig?: string;
  /** cgroup v2 host (docker then defaults to the systemd driver); default: /sys/fs/cgroup/cgroup.controllers exists. */
  cgroupV2?: boolean;
}

export function onPath(name: string, envPath: string | undefined): string | undefined {
  for (const dir of (envPath ?? '').split(':').filter((d) => isAbsolute(d))) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

const executable = (p: string): boolean => {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const ours = (p: unknown): p is string => typeof p === 'string' && OUR_RUNTIMES.includes(basename(p));

/** Docker (pure over the parsed daemon.json): `runtimes.nvidia`, else any runtime whose path is ours. */
export function dockerRegistration(doc: JsonObject, file: string): Registration | undefined {
  const runtimes = doc.runtimes && typeof doc.runtimes === 'object' && !Array.isArray(doc.runtimes) ? (doc.runtimes as Record<string, unknown>) : {};
  const pathOf = (name: string): unknown => {
    const r = runtimes[name];
    return r && typeof r === 'object' ? (r as Record<string, unknown>).path : undefined;
  };
  const name = typeof pathOf(RUNTIME_NAME) === 'string' ? RUNTIME_NAME : Object.keys(runtimes).find((n) => ours(pathOf(n)));
  if (name === undefined) return undefined;
  const path = String(pathOf(name));
  return { name, path, file, executable: false, isDefault: doc['default-runtime'] === name };
}

/** Docker's cgroup driver: exec-opts native.cgroupdriver, else systemd on cgroup v2 (Docker ≥ 20.10) and cgroupfs on v1. */
export function dockerCgroupDriver(doc: JsonObject, cgroupV2: boolean): { systemd: boolean; why: string } {
  const opts = Array.isArray(doc['exec-opts']) ? (doc['exec-opts'] as unknown[]).map(String) : [];
  const opt = opts.map((o) => /^native\.cgroupdriver=(\w+)$/.exec(o.trim())?.[1]).find((v) => v !== undefined);
  if (opt !== undefined) return { systemd: opt === 'systemd', why: `exec-opts native.cgroupdriver=${opt}` };
  return cgroupV2 ? { systemd: true, why: "Docker's default on a cgroup v2 host" } : { systemd: false, why: "Docker's default on a cgroup v1 host" };
}

/** `*` and `?` in the last component, as containerd's imports (filepath.Glob) use them. */
function expandImport(entry: string, base: string): string[] {
  const path = isAbsolute(entry) ? entry : join(base, entry);
  const name = basename(path);
  if (!/[*?[]/.test(name)) return existsSync(path) ? [path] : [];
  const re = new RegExp(`^${name.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return readdirSync(dirname(path)).filter((n) => re.test(n)).sort().map((n) => join(dirname(path), n));
  } catch {
    return [];
  }
}

/**
 * containerd (pure over the parsed files, main first then its imports in order): the CRI plugin table that wins is
 * the last file's that has one (containerd 1.x replaces a plugin's table with an imported one), and in it the
 * `nvidia` handler, else any handler whose BinaryName is ours.
 */
export function containerdRegistration(docs: ReadonlyArray<{ file: string; doc: TomlTable }>): {
  registration?: Registration; systemd?: boolean; why?: string; annotations?: HandlerAnnotations;
} {
  let cri: TomlTable | undefined;
  let criFile = '';
  for (const { file, doc } of docs) {
    for (const id of Object.values(CRI_PLUGIN)) {
      const t = findTable(doc, ['plugins', id]);
      if (t) {
        cri = t;
        criFile = file;
      }
    }
  }
  if (!cri) return {};
  const containerd = findTable(cri, ['containerd']) ?? {};
  const runtimes = findTable(containerd, ['runtimes']) ?? {};
  const binary = (name: string): unknown => {
    const h = runtimes[name];
    return isTable(h) && isTable(h.options) ? h.options.BinaryName : undefined;
  };
  const name = typeof binary(RUNTIME_NAME) === 'string' ? RUNTIME_NAME : Object.keys(runtimes).find((n) => ours(binary(n)));
  const systemdOf = (n: string): boolean => {
    const h = runtimes[n];
    return isTable(h) && isTable(h.options) && h.options.SystemdCgroup === true;
  };
  const handler = name ?? 'runc';
  const systemd = systemdOf(handler);
  const why = `SystemdCgroup = ${systemd} in the ${handler} handler of ${criFile}`;
  if (name === undefined) return { systemd, why };
  const listed = (runtimes[name] as TomlTable).container_annotations;
  const passed = Array.isArray(listed) ? listed.filter((a): a is string => typeof a === 'string') : [];
  return {
    registration: { name, path: String(binary(name)), file: criFile, executable: false, isDefault: containerd.default_runtime_name === name },
    systemd,
    why,
    annotations: { passed, cdiEnabled: cri.enable_cdi === true },
  };
}

/** CRI-O (pure over its files in order, merged key by key): `crio.runtime.runtimes.nvidia`, and cgroup_manager. */
export function crioRegistration(docs: ReadonlyArray<{ file: string; doc: TomlTable }>): { registration?: Registration; systemd: boolean; why: string } {
  let registration: Registration | undefined;
  let manager: string | undefined;
  let managerFile = '';
  let defaultRuntime: string | undefined;
  for (const { file, doc } of docs) {
    const runtime = findTable(doc, ['crio', 'runtime']);
    if (!runtime) continue;
    if (typeof runtime.cgroup_manager === 'string') {
      manager = runtime.cgroup_manager;
      managerFile = file;
    }
    if (typeof runtime.default_runtime === 'string') defaultRuntime = runtime.default_runtime;
    const runtimes = findTable(runtime, ['runtimes']) ?? {};
    for (const [name, h] of Object.entries(runtimes)) {
      if (isTable(h) && typeof h.runtime_path === 'string' && (name === RUNTIME_NAME || ours(h.runtime_path))) {
        if (!registration || name === RUNTIME_NAME) registration = { name, path: h.runtime_path, file, executable: false, isDefault: false };
      }
    }
  }
  if (registration) registration.isDefault = defaultRuntime === registration.name;
  return { ...(registration ? { registration } : {}), systemd: (manager ?? 'systemd') === 'systemd', why: manager ? `cgroup_manager = "${manager}" in ${managerFile}` : "CRI-O's default cgroup_manager (systemd)" };
}

function readToml(file: string): TomlTable | undefined {
  const text = readConfigFile(file);
  return text === null ? undefined : parseToml(text, file);
}

function gatherOne(engine: DoctorEngine, o: EngineOptions): EngineFact {
  const binary = onPath(BINARY[engine], o.env.PATH);
  const base = (installed: boolean, files: string[]): EngineFact => ({ engine, installed, ...(binary ? { binary } : {}), files });
  try {
    if (engine === 'docker') {
      const file = o.dockerConfig ?? DEFAULT_CONFIG_FILE.docker;
      const text = readConfigFile(file);
      const fact = base(binary !== undefined || text !== null, text === null ? [] : [file]);
      const doc = text === null ? {} : parseDaemonJson(text, file);
      const reg = dockerRegistration(doc, file);
      const cg = dockerCgroupDriver(doc, o.cgroupV2 ?? existsSync('/sys/fs/cgroup/cgroup.controllers'));
      return { ...fact, ...(reg ? { registration: { ...reg, executable: executable(reg.path) } } : {}), systemdCgroup: cg.systemd, systemdWhy: cg.why };
    }
    if (engine === 'containerd') {
      const file = o.containerdConfig ?? DEFAULT_CONFIG_FILE.containerd;
      const main = readToml(file);
      const fact = base(binary !== undefined || main !== undefined, main === undefined ? [] : [file]);
      if (!main) return { ...fact, systemdCgroup: false, systemdWhy: "containerd's default (no config file): SystemdCgroup = false" };
      containerdConfigVersion(main, file, 2); // refuses version 1 with the engines module's own words
      const imports = Array.isArray(main.imports) ? main.imports.filter((i): i is string => typeof i === 'string') : [];
      const docs = [{ file, doc: main }];
      for (const entry of imports) for (const f of expandImport(entry, dirname(file))) {
        const doc = readToml(f);
        if (doc) docs.push({ file: f, doc });
      }
      const r = containerdRegistration(docs);
      return {
        ...fact, files: docs.map((d) => d.file),
        ...(r.registration ? { registration: { ...r.registration, executable: executable(r.registration.path) } } : {}),
        ...(r.systemd !== undefined ? { systemdCgroup: r.systemd, systemdWhy: r.why } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      };
    }
    if (engine === 'crio') {
      const file = o.crioConfig ?? DEFAULT_CONFIG_FILE.crio;
      const dropDir = join(dirname(file), 'crio.conf.d');
      let drops: string[] = [];
      try {
        drops = readdirSync(dropDir).sort().map((n) => join(dropDir, n)).filter((f) => statSync(f).isFile());
      } catch {
        drops = [];
      }
      const docs = [file, ...drops].flatMap((f) => {
        const doc = readToml(f);
        return doc ? [{ file: f, doc }] : [];
      });
      const fact = base(binary !== undefined || docs.length > 0, docs.map((d) => d.file));
      const r = crioRegistration(docs);
      return { ...fact, ...(r.registration ? { registration: { ...r.registration, executable: executable(r.registration.path) } } : {}), systemdCgroup: r.systemd, systemdWhy: r.why };
    }
    return base(binary !== undefined, []);
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    return { ...base(true, []), error: e };
  }
}

export function gatherEngines(o: EngineOptions): EngineFact[] {
  return DOCTOR_ENGINES.map((e) => gatherOne(e, o));
}

const CONFIGURE: Record<Exclude<DoctorEngine, 'podman'>, string> = {
  docker: 'nvidia-ctk runtime configure --runtime=docker, then kill -HUP $(pidof dockerd)',
  containerd: 'nvidia-ctk runtime configure --runtime=containerd, then systemctl restart containerd',
  crio: 'nvidia-ctk runtime configure --runtime=crio, then systemctl restart crio',
};
const SYMPTOM: Record<Exclude<DoctorEngine, 'podman'>, string> = {
  docker: 'docker run --runtime=nvidia fails with "unknown or invalid runtime name: nvidia"',
  containerd: "a RuntimeClass with handler nvidia fails (containerd: no runtime for 'nvidia' is configured)",
  crio: 'a RuntimeClass with handler nvidia fails (no such runtime handler)',
};

/**
 * The runtime's CDI annotation prefixes whose annotations containerd would drop before the runtime sees them: none
 * when containerd resolves CDI annotations itself (`enable_cdi`), else those no `container_annotations` glob
 * matches (tried on a key as the device plugin writes it).
 */
export function droppedAnnotationPrefixes(annotations: Readonly<HandlerAnnotations>, prefixes: readonly string[]): string[] {
  if (annotations.cdiEnabled) return [];
  return prefixes.filter((p) => !annotations.passed.some((glob) => globMatches(glob, `${p}nvidia-device-plugin_0`)));
}

/**
 * One line per engine (pure). `cdiDevices`: the names the spec dirs define (podman's way in); `annotationPrefixes`:
 * the runtime config's CDI annotation prefixes (the cdi-annotations device-plugin strategy's way in, on containerd).
 */
export function checkEngine(f: EngineFact, cdiDevices: readonly string[], annotationPrefixes: readonly string[]): CheckResult {
  const id = `engine.${f.engine}`;
  const details: Record<string, unknown> = {
    installed: f.installed, binary: f.binary ?? null, files: f.files, registration: f.registration ?? null, systemdCgroup: f.systemdCgroup ?? null,
    ...(f.annotations ? { containerAnnotations: f.annotations.passed, enableCdi: f.annotations.cdiEnabled } : {}),
  };
  if (!f.installed) return info(id, `${f.engine}: not installed (no ${BINARY[f.engine]} on PATH${f.engine === 'podman' ? '' : ', no config file'})`, { details });
  if (f.error) return fail(id, `${f.engine}: ${f.error.message}`, f.error.fix ?? 'fix the file', details);
  const cgroup = f.systemdCgroup === undefined ? '' : `; cgroup driver ${f.systemdCgroup ? 'systemd' : 'cgroupfs'} (${f.systemdWhy})`;
  if (f.engine === 'podman') {
    const gpus = cdiDevices.filter((n) => n.startsWith('nvidia.com/gpu='));
    return gpus.length > 0
      ? pass(id, `podman: uses CDI; ${gpus.length} nvidia.com/gpu device(s) defined (podman run --device ${gpus.includes('nvidia.com/gpu=all') ? 'nvidia.com/gpu=all' : gpus[0]})`, { details })
      : warn(id, 'podman: uses CDI, but no nvidia.com/gpu device is defined: podman run --device nvidia.com/gpu=0 fails ("unresolvable CDI devices")',
        'nvidia-ctk cdi generate --output /etc/cdi/nvidia.yaml', details);
  }
  const r = f.registration;
  const where = f.files.length ? f.files.join(', ') : `no config file (${f.engine}'s defaults)`;
  if (!r) return warn(id, `${f.engine}: no ${RUNTIME_NAME} runtime in ${where}: ${SYMPTOM[f.engine]}${cgroup}`, CONFIGURE[f.engine], details);
  if (!r.executable) return fail(id, `${f.engine}: runtime "${r.name}" in ${r.file} runs ${r.path}, which is not an executable file`, `install nvidia-runtime at ${r.path}, or ${CONFIGURE[f.engine]}`, details);
  const dropped = f.annotations ? droppedAnnotationPrefixes(f.annotations, annotationPrefixes) : [];
  if (dropped.length > 0) {
    return warn(id, `${f.engine}: handler "${r.name}" in ${r.file} does not pass ${dropped.map((p) => `${p}* annotations`).join(' or ')} to the runtime ` +
      `(container_annotations, enable_cdi off): pods of a device plugin with DEVICE_LIST_STRATEGY=cdi-annotations get no GPU${cgroup}`, CONFIGURE[f.engine], details);
  }
  return pass(id, `${f.engine}: runtime "${r.name}" -> ${r.path} in ${r.file}${r.isDefault ? ' (the default runtime)' : ''}${cgroup}`, { details });
}

export function engineChecks(facts: readonly EngineFact[], cdiDevices: readonly string[], annotationPrefixes: readonly string[]): CheckResult[] {
  return facts.map((f) => checkEngine(f, cdiDevices, annotationPrefixes));
}
