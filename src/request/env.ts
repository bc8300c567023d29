/** OCI `process.env` → Map, with runc's semantics. */

/**
 * Split every entry at the first `=`; entries without `=` (or with an empty name) are ignored, and for a
 * duplicated key the LAST entry wins, as in runc — so we see exactly the environment the process will get.
 * Non-string entries (config.json is untrusted input) are ignored too.
 */
export function envToMap(env: readonly unknown[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of env ?? []) {
    if (typeof entry !== 'string') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    map.delete(key); // keep Map iteration order = order of the effective (last) entries
    map.set(key, entry.slice(eq + 1));
  }
  return map;
}

/** `swarm-resource = "DOCKER_RESOURCE_GPU, …"` → the env names, in order. */
export function swarmResourceNames(value: string): string[] {
  return value.split(',').map((n) => n.trim()).filter((n) => n !== '');
}
