/** A fingerprint of a directory tree, for "nothing outside the rootfs was touched" checks. */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Every path under root with its type, mode and content (files) or target (links); links are never followed. */
export function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const p = join(rel, name);
      const st = lstatSync(join(root, p));
      if (st.isSymbolicLink()) out[p] = `-> ${readlinkSync(join(root, p))}`;
      else if (st.isDirectory()) {
        out[p] = `dir ${st.mode.toString(8)}`;
        walk(p);
      } else out[p] = `${st.mode.toString(8)} ${readFileSync(join(root, p)).toString('base64')}`;
    }
  };
  walk('.');
  return out;
}
