/**
 * Threat: malformed input to the native launcher's readers (SECURITY.md §5, §6 "fuzzing of the C readers"): the
 * launcher view and the spec scan, and argv. The launcher built with ASan+UBSan (any finding aborts) runs in decide
 * mode over mutations of a real view, of real specs and of argv: it must always answer `runc` or `node`, never crash,
 * and answer `runc` only for an intact view (a mutated view is at worst ignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { VIEW_DIR } from '../../src/launcher-contract.js';
import { viewFileName } from '../../src/runtime/launcher-view.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../helpers/dist.js';

const PATH = '/usr/bin:/bin';
let dir: string;
let decide: string;
let config: string;
let viewFile: string;
let goodView: Buffer;
let bundle: string;

beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-asan'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('launcher-fuzz'));
  decide = join(dir, 'nvidia-runtime-decide');
  symlinkSync(join(PACKAGE_ROOT, 'build/dev/nvidia-runtime-asan'), decide);
  const runc = join(dir, 'runc');
  writeFileSync(runc, '#!/bin/sh\n', { mode: 0o755 });
  config = join(dir, 'config.toml');
  writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${runc}"]\n`);
  // The shipped runtime writes the view; the fuzz mutates copies of it.
  execFileSync(distBin('nvidia-runtime'), ['state', 'x'], { env: { PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config }, stdio: 'ignore' });
  viewFile = join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: PATH }));
  goodView = readFileSync(viewFile);
  bundle = join(dir, 'bundle');
  mkdirSync(bundle);
});
afterAll(() => {
  rmSync(viewFile, { force: true });
  rmSync(dir, { recursive: true, force: true });
});

function run(argv: string[]): { what: string; out: string } {
  const r = spawnSync(decide, argv, { env: { PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config }, cwd: dir, encoding: 'latin1' }); // bytes as they are
  expect(r.stderr).toBe(''); // a sanitizer report would be here
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^(runc|node)\t[^\n]*\n$/);
  return { what: r.stdout.split('\t')[0]!, out: r.stdout };
}

const mutate = (bytes: Buffer) => fc.tuple(fc.nat(bytes.length), fc.nat(8), fc.uint8Array({ maxLength: 8 }))
  .map(([at, drop, ins]) => Buffer.concat([bytes.subarray(0, at), Buffer.from(ins), bytes.subarray(at + drop)]));

test('mutated launcher views: never a crash; runc only for a well-formed view naming an absolute runc', () => {
  // (Its content is trusted as far as it goes: only root can write the view, as only root can write config.toml.)
  fc.assert(fc.property(mutate(goodView), (view) => {
    writeFileSync(viewFile, view, { mode: 0o644 });
    const { what, out } = run(['state', 'x']);
    if (what === 'runc') {
      const records = view.toString('latin1').split('\0');
      expect(records[0]).toBe('nvidia-runtime-view 1');
      expect(records.slice(-2)).toEqual(['.', '']);
      expect(records.filter((r) => r.startsWith('r')).map((r) => r.replace(/[\x00-\x1f]/g, '?'))).toEqual([`r${out.slice(5, -1)}`]);
      expect(out.slice(5, 6)).toBe('/');
    }
  }), { numRuns: 1500, seed: 7 });
  writeFileSync(viewFile, goodView, { mode: 0o644 });
  expect(run(['state', 'x']).what).toBe('runc');
});

test('mutated specs and argv: never a crash; a spec with a marker never goes to runc', () => {
  writeFileSync(viewFile, goodView, { mode: 0o644 });
  const spec = Buffer.from(JSON.stringify({ process: { env: ['A=\\u0026', 'NVIDIA_VISIBLE_DEVICES=0'] }, annotations: { 'cdi.k8s.io/x': 'y' } }));
  const argvArb = fc.array(fc.oneof(fc.constantFrom('create', 'run', 'state', '-b', '--bundle', 'bundle', 'id', '--', '--root', '-', '', '--config', '--no-pivot', '--pid-file=p', '-b=', '--bundle=bundle'), fc.string({ maxLength: 6 })), { maxLength: 8 });
  fc.assert(fc.property(mutate(spec), argvArb, (text, argv) => {
    writeFileSync(join(bundle, 'config.json'), text);
    const { what } = run(argv);
    if (what === 'runc' && (argv.includes('create') || argv.includes('run')) && text.includes(Buffer.from('NVIDIA_'))) {
      // only possible when the create does not read this bundle's spec (another bundle, or runc refuses the argv)
      expect(argv.some((a) => a.startsWith('-b') || a.startsWith('--bundle')) || !argv.includes('id')).toBe(true);
    }
  }), { numRuns: 1500, seed: 8 });
});
