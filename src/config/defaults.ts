/**
 * The defaults of every config.toml key (the peer's v1.17.9 `nvidia-ctk config default`, PEER.md §3.7), as a
 * frozen typed object and as commented TOML text. A unit test parses the text back and compares it with the
 * object, so the two cannot drift apart.
 */
import { KNOWN_CAPABILITIES, type FrozenRuntimeConfig, type RuntimeConfig } from './schema.js';

export { DEFAULT_CONFIG_PATH } from '../launcher-contract.js';

/** Low-level runtimes looked for when config.toml sets none (the toolkit's order). */
export const DEFAULT_RUNTIMES: readonly string[] = Object.freeze(['docker-runc', 'runc', 'crun']);

/** A fresh, mutable copy of the defaults (load.ts overlays the file on it, then freezes). */
export function mutableDefaults(): RuntimeConfig {
  return {
    warnings: [],
    disableRequire: false,
    swarmResource: '',
    acceptEnvvarWhenUnprivileged: true,
    acceptVolumeMounts: false,
    supportedCapabilities: [...KNOWN_CAPABILITIES],
    cli: {
      root: '/',
      path: '',
      environment: [],
      debug: '',
      ldcache: '',
      loadKmods: true,
      noCgroups: false,
      user: '',
      ldconfig: '@/sbin/ldconfig',
      noPivot: false,
      driverOptions: [],
    },
    runtime: {
      debug: '/dev/null',
      logLevel: 'info',
      mode: 'auto',
      runtimes: [...DEFAULT_RUNTIMES],
      cdi: { specDirs: ['/etc/cdi', '/var/run/cdi'], defaultKind: 'nvidia.com/gpu', annotationPrefixes: ['cdi.k8s.io/'] },
      csv: { mountSpecPath: '/etc/nvidia-container-runtime/host-files-for-container.d' },
      legacy: { cudaCompatMode: 'ldconfig' },
    },
    hook: { path: 'nvidia-container-runtime-hook', skipModeDetection: false },
    ctk: { path: 'nvidia-ctk' },
    features: {},
  };
}

/** The defaults, deeply frozen. */
export function defaultConfig(): FrozenRuntimeConfig {
  return deepFreeze(mutableDefaults());
}

/** Object.freeze on every object and array reachable from `value`; returns it typed read-only. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const q = (s: string): string => JSON.stringify(s); // JSON string escapes are valid TOML basic-string escapes
const list = (xs: readonly string[]): string => `[${xs.map(q).join(', ')}]`;

/**
 * The defaults as a config.toml, with a comment above each key. Lines starting `#key =` are examples that the
 * peer's default file also writes commented out (a value people commonly set), not the default.
 */
export function renderDefaultConfigToml(): string {
  const d = mutableDefaults();
  return `# nvidia-runtime configuration (compatible with NVIDIA Container Toolkit's config.toml).
# Location: /etc/nvidia-container-runtime/config.toml, or the file named by $NVIDIA_CTK_CONFIG_FILE_PATH.
# Every key is optional; a missing key takes the value shown here. Unknown keys are ignored with a warning.

# Ignore every NVIDIA_REQUIRE_* constraint (like NVIDIA_DISABLE_REQUIRE=true in every container).
disable-require = ${d.disableRequire}

# Comma-separated env var names that, when present in a container, replace NVIDIA_VISIBLE_DEVICES.
swarm-resource = ${q(d.swarmResource)}
#swarm-resource = "DOCKER_RESOURCE_GPU"

# false: NVIDIA_VISIBLE_DEVICES is honoured only for containers with CAP_SYS_ADMIN in their bounding set.
accept-nvidia-visible-devices-envvar-when-unprivileged = ${d.acceptEnvvarWhenUnprivileged}

# Honour /dev/null mounts under /var/run/nvidia-container-devices/ as device requests.
accept-nvidia-visible-devices-as-volume-mounts = ${d.acceptVolumeMounts}

# Capabilities a container may ask for in NVIDIA_DRIVER_CAPABILITIES ("all" = every one listed here).
supported-driver-capabilities = ${q(d.supportedCapabilities.join(','))}

[nvidia-container-cli]
# Driver root: where the driver's files live (a driver container installs under /run/nvidia/driver).
# Empty means "/".
root = ""
#root = "/run/nvidia/driver"
# nvidia-container-cli binary; empty means a PATH lookup.
path = ${q(d.cli.path)}
#path = "/usr/bin/nvidia-container-cli"
# Extra environment for the cli, as "NAME=value" strings.
environment = ${list(d.cli.environment)}
# cli log file; empty means no log.
debug = ${q(d.cli.debug)}
#debug = "/var/log/nvidia-container-toolkit.log"
# ld.so.cache to read; empty means /etc/ld.so.cache under the driver root.
ldcache = ${q(d.cli.ldcache)}
#ldcache = "/etc/ld.so.cache"
# Load the nvidia kernel modules if they are not loaded.
load-kmods = ${d.cli.loadKmods}
# Do not set up device cgroups (rootless podman and docker need true).
no-cgroups = ${d.cli.noCgroups}
# user[:group] to run as; empty means the caller.
user = ${q(d.cli.user)}
#user = "root:video"
# ldconfig to run in the container; a leading "@" means a host path. A container path needs
# features.allow-ldconfig-from-container.
ldconfig = ${q(d.cli.ldconfig)}
# Do not pivot_root into the container (for hosts where pivot_root fails, e.g. a ramdisk root).
no-pivot = ${d.cli.noPivot}
# nvidia-runtime only: libnvidia-container's driver options for every container (no-glvnd, no-uvm, no-modeset,
# no-mps, no-persistenced, no-fabricmanager, no-gsp-firmware; docs/capabilities.md).
#driver-options = ["no-persistenced"]

[nvidia-container-runtime]
# Runtime log file; "/dev/null" or empty means no log.
debug = ${q(d.runtime.debug)}
#debug = "/var/log/nvidia-container-runtime.log"
# panic, fatal, error, warn, info, debug or trace.
log-level = ${q(d.runtime.logLevel)}
# auto, legacy, cdi or csv.
mode = ${q(d.runtime.mode)}
# Low-level runtimes to look for, in order (a bare name is looked up in PATH).
runtimes = ${list(d.runtime.runtimes)}

[nvidia-container-runtime.modes.cdi]
# Where CDI specs are read from.
spec-dirs = ${list(d.runtime.cdi.specDirs)}
# Kind prepended to bare device names in NVIDIA_VISIBLE_DEVICES.
default-kind = ${q(d.runtime.cdi.defaultKind)}
# Annotations with these prefixes are CDI device requests.
annotation-prefixes = ${list(d.runtime.cdi.annotationPrefixes)}

[nvidia-container-runtime.modes.csv]
# Directory of CSV files naming the host files to mount (Tegra).
mount-spec-path = ${q(d.runtime.csv.mountSpecPath)}

[nvidia-container-runtime.modes.legacy]
# How CUDA forward-compat libraries are made visible: ldconfig, mount, hook or disabled.
cuda-compat-mode = ${q(d.runtime.legacy.cudaCompatMode)}

[nvidia-container-runtime-hook]
# The prestart hook binary (a bare name is looked up in PATH).
path = ${q(d.hook.path)}
# Act as the hook even when the runtime mode is not legacy.
skip-mode-detection = ${d.hook.skipModeDetection}

[nvidia-ctk]
# The binary used as the hook in generated container edits.
path = ${q(d.ctk.path)}

[features]
# Booleans, all unset (off) by default:
#allow-cuda-compat-libs-from-container = false
#allow-ldconfig-from-container = false
#disable-cuda-compat-lib-hook = false
#disable-imex-channel-creation = false
#ignore-imex-channel-requests = false
#allow-unknown-oci-spec-fields = false
#no-additional-gids-for-device-nodes = false
`;
}
