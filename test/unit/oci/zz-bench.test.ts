import { parseSpec, serializeSpec } from '../../../src/oci/spec-file.js';
import { applyEdits } from '../../../src/edits/apply.js';
it('bench', () => {
  const env = Array.from({ length: 100000 }, (_, i) => `K${i}=${'v'.repeat(150)}`);
  const text = JSON.stringify({ ociVersion: '1', process: { env }, annotations: Object.fromEntries(env.map((e, i) => [`a${i}`, e])) });
  let t = Date.now();
  const s = parseSpec(text, 'x');
  const tp = Date.now() - t; t = Date.now();
  const out = applyEdits(s, { env: ['K99999=1', 'NEW=1'] });
  const ta = Date.now() - t; t = Date.now();
  serializeSpec(out);
  console.log(text.length, 'parse', tp, 'apply', ta, 'ser', Date.now() - t);
});
