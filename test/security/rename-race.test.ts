/**
 * Threat: a container process racing the hook by swapping a directory of its rootfs with a link to the host
 * (SECURITY.md §2 runc CVE-2019-19921 / CVE-2021-30465 / CVE-2024-21626 class, §6: "a RENAME_EXCHANGE race loop against
 * the hook", filepath-securejoin's doRenameExchangeLoop). While a racer atomically exchanges rootfs directories with
 * links to a host sentinel tree, the hook (both resolvers: openat2 RESOLVE_IN_ROOT and the fallback walk) runs
 * again and again; the sentinel must never be written, whatever each run's outcome.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../helpers/dist.js';

const RUNS = 1000;
let dir: string;
let racer: string;

beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook', 'build/dev/nvidia-runtime-hook-walk'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('race'));
  racer = join(dir, 'racer');
  writeFileSync(join(dir, 'racer.c'), `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* racer A B: exchange A and B atomically, forever (until killed). */
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  for (;;) renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
`);
  execFileSync('gcc', ['-O2', '-o', racer, join(dir, 'racer.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function snapshot(root: string): string {
  return execFileSync('sh', ['-c', `cd ${root} && find . -printf '%p %y %m %s\\n' | sort && find . -type f -exec cat {} +`]).toString();
}

describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-walk'])('%s', (binary) => {
  test.each([
    ['etc/ld.so.conf.d', 'etc'],
    ['etc', ''],
    ['opt/nv', 'opt'],
  ])(`racing %s against a link to the host, ${RUNS} hook runs: the host is never written`, (swapped, parent) => {
    const root = join(dir, `${binary}-${swapped.replace(/\//g, '_')}`);
    const host = join(dir, `${binary}-host-${swapped.replace(/\//g, '_')}`);
    mkdirSync(join(host, 'ld.so.conf.d'), { recursive: true });
    writeFileSync(join(host, 'ld.so.conf'), 'host\n');
    writeFileSync(join(host, 'ld.so.cache'), 'host cache');
    const before = snapshot(host);
    for (const d of ['etc/ld.so.conf.d', 'opt/nv']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
    copyFileSync(realpathSync('/usr/lib/x86_64-linux-gnu/libz.so.1'), join(root, 'opt/nv/libz.so.1.2.3'));
    const swap = join(root, parent, 'swap');
    symlinkSync(host, swap);
    const race = spawn(racer, [join(root, swapped), swap], { stdio: 'ignore' });
    const outcomes: Record<string, number> = {};
    try {
      for (let i = 0; i < RUNS; i++) {
        const r = spawnSync(join(PACKAGE_ROOT, 'build/dev', binary), ['update-ldcache', '--root', root, '--folder', '/opt/nv', '--link', 'libz.so.1::/opt/nv/libz.so'], {
          input: '{"ociVersion":"1.0.2","id":"c","status":"creating","pid":1,"bundle":"/b"}', env: {}, timeout: 30_000,
        });
        const key = r.status === 0 ? 'ok' : 'refused';
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      }
    } finally {
      race.kill('SIGKILL');
    }
    expect(snapshot(host)).toBe(before);
    expect(readdirSync(host).sort()).toEqual(['ld.so.cache', 'ld.so.conf', 'ld.so.conf.d']);
    expect(readFileSync(join(host, 'ld.so.conf'), 'utf8')).toBe('host\n');
    expect((outcomes.ok ?? 0) + (outcomes.refused ?? 0)).toBe(RUNS);
    expect(outcomes.ok ?? 0).toBeGreaterThan(0); // the race did not simply stop every run
    process.stdout.write(`${binary} racing ${swapped}: ${JSON.stringify(outcomes)}\n`);
  }, 300_000);
});
