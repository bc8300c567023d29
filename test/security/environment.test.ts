/**
 * Threat: environment poisoning of host-side processes (SECURITY.md §1.4 CVE-2025-23266 "NVIDIAScape", §4.5, item
 * 18). Neither the caller's environment (the engine's: OPENSSL_CONF, NODE_OPTIONS) nor the image's
 * (`process.env` of config.json: LD_PRELOAD, LD_AUDIT, NODE_OPTIONS, OPENSSL_CONF, PATH) may make a process we run as
 * host root — the TypeScript runtime, the createContainer hook, ldconfig — load or run anything. Each poison is a
 * library or script on the host that leaves a marker file when loaded; none may appear, and the GPU container runs.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
let poison: string; // host-only directory: nothing in it is visible inside the container
let markers: string;

beforeAll(async () => {
  host = await makeGpuHost(1);
  rootfs = await makeGlibcRootfs(join(host.dir, 'rootfs'));
  poison = join(host.dir, 'poison');
  markers = join(host.dir, 'markers');
  mkdirSync(poison);
  mkdirSync(markers);
  // A shared object that leaves a marker named after the process that loaded it.
  writeFileSync(join(poison, 'evil.c'), `#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
  char exe[256] = {0}, path[512];
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) snprintf(exe, sizeof exe, "unknown");
  for (char *p = exe; *p; p++) if (*p == '/') *p = '_';
  snprintf(path, sizeof path, "${markers}/loaded-by%s", exe);
  close(open(path, O_CREAT | O_WRONLY, 0644));
}
unsigned la_version(unsigned v) { return v; } /* an LD_AUDIT module too */
int OSSL_provider_init(void) { return 0; }    /* and what OpenSSL looks for in a provider */
`);
  await execa('gcc', ['-shared', '-fPIC', '-o', join(poison, 'evil.so'), join(poison, 'evil.c')]);
  // Node reads the nodejs_conf section (OpenSSL tools: openssl_conf): both load the provider, whose constructor marks.
  writeFileSync(join(poison, 'openssl.cnf'), `nodejs_conf = init\nopenssl_conf = init\n[init]\nproviders = prov\n[prov]\nevil = evil_sect\n[evil_sect]\nmodule = ${join(poison, 'evil.so')}\nactivate = 1\n`);
  writeFileSync(join(poison, 'evil.cjs'), `require('fs').writeFileSync(${JSON.stringify(join(markers, 'node-options'))}, 'x')`);
  // PATH poison (for the image's PATH): an ldconfig, a runc and a hook that mark when run.
  for (const exe of ['ldconfig', 'runc', 'nvidia-runtime-hook']) writeFileSync(join(poison, exe), `#!/bin/sh\ntouch ${markers}/ran-${exe}\n`, { mode: 0o755 });
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));
afterEach(() => {
  for (const m of readdirSync(markers)) rmSync(join(markers, m));
});

const LIST = ['sh', '-c', 'ls /dev | grep -E "^nvidia[0-9]+$"; ldconfig -p | grep -c libcuda.so'];

test('the caller\'s OPENSSL_CONF and NODE_OPTIONS never reach the root Node process (allowlisted environment)', async () => {
  const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args: LIST });
  const r = await runtimeRun(host, bundle, { OPENSSL_CONF: join(poison, 'openssl.cnf'), NODE_OPTIONS: `--require ${join(poison, 'evil.cjs')}` });
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  expect(r.stdout.split('\n')[0]).toBe('nvidia0');
  expect(readdirSync(markers)).toEqual([]);
});

test('the image\'s LD_PRELOAD, LD_AUDIT, NODE_OPTIONS, OPENSSL_CONF and PATH never reach the hook or ldconfig', async () => {
  const env = [
    'NVIDIA_VISIBLE_DEVICES=0', `LD_PRELOAD=${join(poison, 'evil.so')}`, `LD_AUDIT=${join(poison, 'evil.so')}`,
    `NODE_OPTIONS=--require ${join(poison, 'evil.cjs')}`, `OPENSSL_CONF=${join(poison, 'openssl.cnf')}`, `LD_LIBRARY_PATH=${poison}`,
    `PATH=${poison}:/usr/sbin:/usr/bin:/sbin:/bin`, // replaces runc spec's PATH (the image's, not the caller's)
  ];
  const bundle = await makeBundle(host, rootfs, { env, args: LIST });
  const r = await runtimeRun(host, bundle);
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  expect(r.stdout.split('\n')).toEqual(expect.arrayContaining(['nvidia0']));
  expect(Number(r.stdout.split('\n')[1])).toBeGreaterThan(0); // the hook's ld cache works
  // The container's own processes do not see the host-only poison either (not in the rootfs).
  expect(readdirSync(markers)).toEqual([]);
  expect(existsSync(join(markers, 'ran-ldconfig'))).toBe(false);
});
