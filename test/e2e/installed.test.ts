/**
 * The end-to-end suites against the installed package: after `bash scripts/setup.sh` (the README's first command,
 * which builds and installs nvidia-runtime_<version>_amd64.deb), every end-to-end suite (runc, dockerd,
 * containerd and its CRI, podman, lxc, the warm path, the CLIs) runs again with
 * NVR_TEST_INSTALLED=/usr/lib/nvidia-runtime, so every executable they start is the installed one (test/helpers/dist.ts distBin) — a file the package lacks, a wrong
 * mode or a path that only works from the build tree fails here.
 *
 * Only an installation of this very build is tested (every file under the prefix byte-identical to the tree's): with none, or another build installed, the test is reported as skipped with the reason, never as
 * passed. CI runs setup.sh first (.ci/run), so there it always runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from '../helpers/dist.js';

const PREFIX = '/usr/lib/nvidia-runtime';
/** Every end-to-end suite but this one and package.test.ts (which builds and installs its own .deb in an overlay). */
const SUITES = readdirSync(join(PACKAGE_ROOT, 'test/e2e'))
  .filter((f) => f.endsWith('.test.ts') && f !== 'installed.test.ts' && f !== 'package.test.ts')
  .sort()
  .map((f) => `test/e2e/${f}`);

/**
 * The files and links under `prefix`, relative to it; npm's hidden lockfile aside (it records how npm installed,
 * production-only there, not what: the packages themselves are compared).
 */
function installedFiles(prefix: string): string[] {
  return readdirSync(prefix, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(prefix, join(e.parentPath, e.name)))
    .filter((f) => f !== 'node_modules/.package-lock.json');
}

/** Why the installed package cannot be tested as this build; undefined when it can. */
function notThisBuild(): string | undefined {
  let status = '';
  try {
    status = execFileSync('dpkg-query', ['-W', '-f=${Status} ${Version}', 'nvidia-runtime'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return 'the nvidia-runtime package is not installed (run bash scripts/setup.sh first, as the README says)';
  }
  if (!status.startsWith('install ok installed')) return `the nvidia-runtime package is not installed (${status})`;
  for (const f of ['dist/runtime/main.bundle.cjs', 'build/Release/nvidia-runtime']) {
    if (!existsSync(join(PREFIX, f))) return `${join(PREFIX, f)} is missing from the installed package`;
  }
  const differs = installedFiles(PREFIX).find((f) => {
    const tree = join(PACKAGE_ROOT, f);
    const st = lstatSync(join(PREFIX, f));
    if (st.isSymbolicLink()) return !lstatSync(tree, { throwIfNoEntry: false })?.isSymbolicLink() || readlinkSync(tree) !== readlinkSync(join(PREFIX, f));
    return !existsSync(tree) || !readFileSync(join(PREFIX, f)).equals(readFileSync(tree));
  });
  return differs === undefined ? undefined : `the installed package is another build (${differs} differs): run bash scripts/setup.sh to install this one`;
}

const why = notThisBuild();
const missingFile = why?.includes('is missing from the installed package') === true;

// A file missing from an installed package of this version is a packaging bug, not a reason to skip.
(why === undefined || missingFile ? test : test.skip)(`the end-to-end suites against ${PREFIX}${why ? ` (skipped: ${why})` : ''}`, () => {
  expect(why).toBeUndefined();
  const r = spawnSync(process.execPath, ['--experimental-vm-modules', join(PACKAGE_ROOT, 'node_modules/jest/bin/jest.js'), '--runInBand', ...SUITES], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, NVR_TEST_INSTALLED: PREFIX },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  // jest prints its report on stderr: the failures' part of it when something fails.
  const report = `${r.stderr}`.split('\n').filter((l) => /✕|●|Tests:|Test Suites:/.test(l)).slice(0, 60).join('\n');
  expect([r.status, report]).toEqual([0, expect.stringMatching(/Tests:\s+(\d+ skipped, )?\d+ passed, \d+ total/)]);
  expect(r.stderr).toMatch(new RegExp(`Test Suites:\\s+${SUITES.length} passed, ${SUITES.length} total`));
}, 20 * 60 * 1000);
