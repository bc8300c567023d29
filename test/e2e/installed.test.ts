/**
 * The end-to-end suites against the installed package: after `bash scripts/setup.sh` (the README's first command,
 * which builds and installs nvidia-runtime_<version>_amd64.deb), the suites that run the runtime through runc,
 * dockerd, containerd's CRI and the CLIs run again with NVR_TEST_INSTALLED=/usr/lib/nvidia-runtime, so every
 * executable they start is the installed one (test/helpers/dist.ts distBin) — a file the package lacks, a wrong
 * mode or a path that only works from the build tree fails here.
 *
 * Only an installation of this very build is tested (its runtime bundle, launcher, hook and addon byte-identical to
 * the tree's): with none, or another build installed, the test is reported as skipped with the reason, never as
 * passed. CI runs setup.sh first (.ci/run), so there it always runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../helpers/dist.js';

const PREFIX = '/usr/lib/nvidia-runtime';
const SAME_FILES = ['dist/runtime/main.bundle.cjs', 'build/Release/nvidia-runtime', 'build/Release/nvidia-runtime-hook', 'build/Release/nvidia_runtime.node'];
const SUITES = [
  'test/e2e/runtime-runc.test.ts',
  'test/e2e/runtime-cdi.test.ts',
  'test/e2e/container-cli.test.ts',
  'test/e2e/cdi-cli.test.ts',
  'test/e2e/kubernetes.test.ts',
  'test/e2e/docker.test.ts',
  'test/e2e/docker-gpus.test.ts',
  'test/e2e/cri.test.ts',
];

/** Why the installed package cannot be tested as this build; undefined when it can. */
function notThisBuild(): string | undefined {
  let status = '';
  try {
    status = execFileSync('dpkg-query', ['-W', '-f=${Status} ${Version}', 'nvidia-runtime'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return 'the nvidia-runtime package is not installed (run bash scripts/setup.sh first, as the README says)';
  }
  if (!status.startsWith('install ok installed')) return `the nvidia-runtime package is not installed (${status})`;
  for (const f of SAME_FILES) {
    const installed = join(PREFIX, f);
    if (!existsSync(installed)) return `${installed} is missing from the installed package`;
    if (!readFileSync(installed).equals(readFileSync(join(PACKAGE_ROOT, f)))) {
      return `the installed package is another build (${f} differs): run bash scripts/setup.sh to install this one`;
    }
  }
  return undefined;
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
