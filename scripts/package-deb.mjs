#!/usr/bin/env node
// `npm run package`: builds nvidia-runtime_<version>_<arch>.deb from the built tree (npm ci builds it), installed as
// NVIDIA's toolkit is (docs/install.md):
//   /usr/lib/nvidia-runtime/{package.json,dist/,build/Release/<artifacts>,node_modules/ (production only)}
//   /usr/bin/<the toolkit's command names>        links into /usr/lib/nvidia-runtime/dist/bin
//   /etc/nvidia-container-runtime/config.toml     conffile: `nvidia-ctk config default` (every key, commented)
//   /lib/systemd/system/nvidia-runtime.{socket,service}   the warm path, not enabled (systemd/, paths for /usr/bin)
//   /usr/share/doc/nvidia-runtime/                copyright, install.md, warm-path.md
// Maintainer scripts, control template and copyright come from packaging/. Everything is staged in a temporary
// directory (the tree's dist/ and build/ are only read) and packed by dpkg-deb --root-owner-group.
//
//   node scripts/package-deb.mjs [--out DIR] [--version VERSION] [--compression xz|gzip|zstd|none]
//     --out DIR       where the .deb goes (default: the repository root); created if missing
//     --version V     the package version (default: package.json's "version"); the package test builds a higher one
//     --compression   dpkg-deb's -Z (default xz, Debian's default)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync,
  rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = 'usr/lib/nvidia-runtime';
/** /usr/bin name → the file in dist/bin it links to (scripts/link-bins.mjs makes dist/bin). */
const BIN_LINKS = {
  'nvidia-runtime': 'nvidia-runtime',
  'nvidia-container-runtime': 'nvidia-runtime', // the toolkit's runtime name, which engines' docs use
  'nvidia-container-runtime-hook': 'nvidia-container-runtime-hook',
  'nvidia-container-toolkit': 'nvidia-container-toolkit',
  'nvidia-cdi-hook': 'nvidia-cdi-hook',
  'nvidia-ctk': 'nvidia-ctk',
  'nvidia-container-cli': 'nvidia-container-cli',
};
/** The Node the package's TypeScript CLIs run under: what Depends: nodejs installs. */
const PACKAGE_NODE = '/usr/bin/node';
const CONFFILE = 'etc/nvidia-container-runtime/config.toml';

function fail(message) {
  console.error(`package-deb: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { out: root, version: undefined, compression: 'xz' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => inline ?? argv[++i] ?? fail(`${flag} needs a value`);
    if (flag === '--out') opts.out = value();
    else if (flag === '--version') opts.version = value();
    else if (flag === '--compression') opts.compression = value();
    else fail(`unknown argument ${argv[i]} (usage: package-deb.mjs [--out DIR] [--version V] [--compression xz|gzip|zstd|none])`);
  }
  return opts;
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout;
}

function walk(dir, visit) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const st = lstatSync(path);
    visit(path, st);
    if (st.isDirectory()) walk(path, visit);
  }
}

/** The highest GLIBC_x.y symbol version the ELF files need: the libc6 dependency (what dpkg-shlibdeps would say). */
function libcDepends(files) {
  let best = [2, 17];
  for (const f of files) {
    const r = spawnSync('objdump', ['-T', f], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) continue;
    for (const m of r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
      const v = [Number(m[1]), Number(m[2])];
      if (v[0] > best[0] || (v[0] === best[0] && v[1] > best[1])) best = v;
    }
  }
  return `libc6 (>= ${best.join('.')})`;
}

const opts = parseArgs(process.argv.slice(2));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = opts.version ?? pkg.version;
if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version)) fail(`${JSON.stringify(version)} is not a Debian version`);
const arch = run('dpkg', ['--print-architecture']).trim();
for (const need of ['dist/bin/nvidia-runtime', 'dist/bin/nvidia-ctk.js', 'dist/runtime/main.js', 'build/Release/nvidia_runtime.node', 'build/Release/nvidia-runtime-hook']) {
  if (!existsSync(join(root, need))) fail(`${need} is missing: build the tree first (npm ci)`);
}
for (const need of Object.values(BIN_LINKS)) {
  if (!existsSync(join(root, 'dist', 'bin', need))) fail(`dist/bin/${need} is missing: build the tree first (npm ci)`);
}

process.umask(0o022);
const stage = mkdtempSync(join(tmpdir(), 'nvr-deb-'));
try {
  const tree = join(stage, 'root');
  const lib = join(tree, PREFIX);
  mkdirSync(lib, { recursive: true });

  // dist/ as built, links kept (dist/bin/nvidia-container-runtime-hook -> nvidia-runtime, main.js -> main.cjs, ...);
  // the CLI wrappers' shebang names the Node the package depends on, not the build machine's.
  cpSync(join(root, 'dist'), join(lib, 'dist'), { recursive: true, verbatimSymlinks: true });
  for (const name of readdirSync(join(lib, 'dist', 'bin'))) {
    const wrapper = join(lib, 'dist', 'bin', name);
    if (!lstatSync(wrapper).isFile() || !existsSync(`${wrapper}.js`)) continue;
    const text = readFileSync(wrapper, 'utf8');
    if (text.startsWith('#!')) writeFileSync(wrapper, `#!${PACKAGE_NODE}${text.slice(text.indexOf('\n'))}`);
  }

  // build/Release: the addon, the native executables and the mock driver's artifacts (nvidia-ctk mock-driver), not
  // gyp's intermediate objects.
  mkdirSync(join(lib, 'build', 'Release'), { recursive: true });
  const release = join(root, 'build', 'Release');
  const elfFiles = [];
  for (const name of readdirSync(release)) {
    const from = join(release, name);
    if (!lstatSync(from).isFile()) continue;
    copyFileSync(from, join(lib, 'build', 'Release', name));
    elfFiles.push(join(lib, 'build', 'Release', name));
  }

  // package.json, and the production dependencies exactly as the lockfile pins them (no scripts: the package's own
  // install script would rebuild the addon here).
  copyFileSync(join(root, 'package.json'), join(lib, 'package.json'));
  const npmDir = join(stage, 'npm');
  mkdirSync(npmDir);
  copyFileSync(join(root, 'package.json'), join(npmDir, 'package.json'));
  copyFileSync(join(root, 'package-lock.json'), join(npmDir, 'package-lock.json'));
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: npmDir });
  rmSync(join(npmDir, 'node_modules', '.bin'), { recursive: true, force: true }); // dependencies' CLIs: not shipped
  renameSync(join(npmDir, 'node_modules'), join(lib, 'node_modules'));

  // /usr/bin: the toolkit's names, relative links into dist/bin.
  mkdirSync(join(tree, 'usr', 'bin'), { recursive: true });
  for (const [name, target] of Object.entries(BIN_LINKS)) {
    symlinkSync(relative(join(tree, 'usr', 'bin'), join(lib, 'dist', 'bin', target)), join(tree, 'usr', 'bin', name));
  }

  // The conffile: the runtime's own defaults, every key with its comment.
  mkdirSync(join(tree, dirname(CONFFILE)), { recursive: true });
  writeFileSync(join(tree, CONFFILE), run(process.execPath, [join(root, 'dist', 'bin', 'nvidia-ctk.js'), 'config', 'default']));

  // The warm path's units, for the installed paths.
  const units = join(tree, 'lib', 'systemd', 'system');
  mkdirSync(units, { recursive: true });
  for (const unit of ['nvidia-runtime.socket', 'nvidia-runtime.service']) {
    // systemd/ names the installed paths (/usr/bin/nvidia-runtime): copied as they are.
    writeFileSync(join(units, unit), readFileSync(join(root, 'systemd', unit), 'utf8'));
  }

  const doc = join(tree, 'usr', 'share', 'doc', 'nvidia-runtime');
  mkdirSync(doc, { recursive: true });
  copyFileSync(join(root, 'packaging', 'copyright'), join(doc, 'copyright'));
  for (const d of ['install.md', 'warm-path.md']) if (existsSync(join(root, 'docs', d))) copyFileSync(join(root, 'docs', d), join(doc, d));

  // Modes: nothing group/world-writable (the files decide what runs as root); dpkg-deb makes everything root:root.
  let bytes = 0;
  const md5sums = [];
  walk(tree, (path, st) => {
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) return chmodSync(path, 0o755);
    chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
    bytes += st.size;
    md5sums.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${relative(tree, path)}`);
  });

  const debian = join(tree, 'DEBIAN');
  mkdirSync(debian);
  const control = readFileSync(join(root, 'packaging', 'control.in'), 'utf8')
    .replaceAll('@VERSION@', version)
    .replaceAll('@ARCH@', arch)
    .replaceAll('@INSTALLED_SIZE@', String(Math.ceil(bytes / 1024)))
    .replaceAll('@LIBC_DEPENDS@', libcDepends(elfFiles));
  writeFileSync(join(debian, 'control'), control);
  writeFileSync(join(debian, 'conffiles'), `/${CONFFILE}\n`);
  writeFileSync(join(debian, 'md5sums'), `${md5sums.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join('\n')}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    copyFileSync(join(root, 'packaging', script), join(debian, script));
    chmodSync(join(debian, script), 0o755);
  }
  chmodSync(debian, 0o755);

  mkdirSync(opts.out, { recursive: true });
  const deb = join(opts.out, `nvidia-runtime_${version}_${arch}.deb`);
  run('dpkg-deb', ['--root-owner-group', `-Z${opts.compression}`, '--build', tree, deb]);
  console.log(deb);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
