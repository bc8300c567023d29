/** NVIDIA_DRIVER_CAPABILITIES (PEER §3.8): which groups of driver files a GPU container gets. */
import { NvrError } from '../errors.js';
import { quote } from './devices.js';
import { CAPABILITIES, isCapability, type Capability } from '../host/capabilities.js';

export { isCapability };

/** Every capability (the one list, src/host/capabilities.ts), sorted: the default `supported-driver-capabilities`. */
export const ALL_CAPABILITIES: readonly Capability[] = Object.freeze([...CAPABILITIES].sort());

/** What a container gets when it does not say (NCT; the LXC hook differs: utility only). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = Object.freeze(['compute', 'utility'] as const);

function sortedUnique(caps: Iterable<Capability>): Capability[] {
  return [...new Set(caps)].sort();
}

/**
 * Parse NVIDIA_DRIVER_CAPABILITIES against the supported set. Unset or empty → `defaults` (compute,utility,
 * limited to what is supported); `all` anywhere → the supported set; otherwise a trimmed comma list whose
 * every item must be supported. Result sorted and unique.
 */
export function parseCapabilities(
  value: string | undefined,
  supported: readonly Capability[] = ALL_CAPABILITIES,
  defaults: readonly Capability[] = DEFAULT_CAPABILITIES,
): Capability[] {
  const items = (value ?? '')
    .split(',')
    .map((i) => i.trim().toLowerCase())
    .filter((i) => i !== '');
  if (items.length === 0) return sortedUnique(defaults.filter((c) => supported.includes(c)));
  if (items.includes('all')) return sortedUnique(supported);
  const caps: Capability[] = [];
  for (const item of items) {
    if (!isCapability(item) || !supported.includes(item)) {
      const known = isCapability(item);
      throw new NvrError(
        'INPUT',
        `NVIDIA_DRIVER_CAPABILITIES: unsupported capability ${quote(item)} ` +
          `(supported: ${sortedUnique(supported).join(',')})`,
        {
          fix: known
            ? 'remove it, or add it to supported-driver-capabilities in config.toml'
            : `use a comma-separated list of ${ALL_CAPABILITIES.join(', ')}, or all`,
        },
      );
    }
    caps.push(item);
  }
  return sortedUnique(caps);
}
