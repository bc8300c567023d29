/** The service's caches (src/serve/caches.ts): unchanged inputs → cached; a touched or replaced file → recomputed. */
import { chmodSync, mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cdiCache, configCache, fingerprinted, inventoryCache, runcCache } from '../../../src/serve/caches.js';
import { distBin, tempDir } from '../../helpers/dist.js';

let dir: string;
beforeEach(() => {
  dir = tempDir('serve-caches');
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const later = (file: string): void => {
  const t = new Date(Date.now() + 5000);
  utimesSync(file, t, t);
};

test('fingerprinted: same print → cached, other print → recomputed, undefined → never kept, throws → not kept', () => {
  let print: string | undefined = 'a';
  let n = 0;
  const c = fingerprinted((x: number) => { n++; if (x < 0) throw new Error('no'); return x * 2; }, () => print);
  expect(c.get(1)).toBe(2);
  expect(c.get(1)).toBe(2);
  expect(n).toBe(1);
  print = 'b';
  expect(c.get(1)).toBe(2);
  expect(n).toBe(2);
  expect(c.get(2)).toBe(4); // another key
  expect(n).toBe(3);
  print = undefined;
  c.get(1);
  c.get(1);
  expect(n).toBe(5);
  expect(() => c.get(-1)).toThrow('no');
  expect(() => c.get(-1)).toThrow('no');
  expect(n).toBe(7);
  expect(c.stats).toEqual({ hits: 1, misses: 7 });
});

test('before: a change racing the computation is not kept', () => {
  let version = 0;
  let n = 0;
  const c = fingerprinted(() => { n++; version++; return n; }, () => String(version), undefined, { before: true });
  c.get();
  c.get();
  expect(n).toBe(2);
});

describe('config', () => {
  const write = (file: string, text: string): void => writeFileSync(file, text, { mode: 0o644 });
  test('by the file identity: touched, rewritten, replaced → reloaded; unchanged → cached', () => {
    const file = join(dir, 'config.toml');
    write(file, '[nvidia-container-runtime]\nmode = "legacy"\n');
    const cache = configCache();
    const env = { NVIDIA_CTK_CONFIG_FILE_PATH: file };
    const a = cache.get(env);
    expect(cache.get(env)).toBe(a);
    expect(cache.get({ ...env, PATH: '/x' })).toBe(a); // the key is the file
    later(file);
    const b = cache.get(env);
    expect(b).not.toBe(a);
    write(file, '[nvidia-container-runtime]\nmode = "cdi"\n');
    expect(cache.get(env).runtime.mode).toBe('cdi');
    const other = join(dir, 'new.toml');
    write(other, '[nvidia-container-runtime]\nmode = "csv"\n');
    renameSync(other, file);
    const c = cache.get(env);
    expect(c.runtime.mode).toBe('csv');
    expect(cache.get(env)).toBe(c);
    chmodSync(file, 0o664); // now untrusted: loadConfig refuses it, and so must the cache
    expect(() => cache.get(env)).toThrow(/writable by group/);
  });

  test('a missing file means the defaults until it appears', () => {
    const file = join(dir, 'absent.toml');
    const cache = configCache();
    const env = { NVIDIA_CTK_CONFIG_FILE_PATH: file };
    const a = cache.get(env);
    expect(cache.get(env)).toBe(a);
    write(file, '[nvidia-container-runtime]\nmode = "cdi"\n');
    expect(cache.get(env).runtime.mode).toBe('cdi');
  });
});

describe('runc lookup', () => {
  test('by PATH and every consulted path: a new runc earlier in PATH, a chmod → looked up again', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(a, { mode: 0o755 });
    mkdirSync(b, { mode: 0o755 });
    writeFileSync(join(b, 'runc'), '#!/bin/sh\n', { mode: 0o755 });
    const cache = runcCache();
    const self = join(dir, 'self');
    const path = `${a}:${b}`;
    const r1 = cache.get(['runc'], path, self);
    expect(r1.path).toBe(join(b, 'runc'));
    expect(cache.get(['runc'], path, self)).toBe(r1);
    expect(cache.get(['runc'], b, self)).not.toBe(r1); // another PATH, another entry
    writeFileSync(join(a, 'runc'), '#!/bin/sh\n', { mode: 0o755 });
    expect(cache.get(['runc'], path, self).path).toBe(join(a, 'runc'));
    chmodSync(join(a, 'runc'), 0o775);
    expect(() => cache.get(['runc'], path, self)).toThrow(/group-writable/);
  });
});

describe('CDI registry', () => {
  const spec = (name: string): string => JSON.stringify({ cdiVersion: '0.5.0', kind: 'example.com/gpu', devices: [{ name, containerEdits: { env: [`X=${name}`] } }] });
  test('by spec dirs and files: a new, changed or removed file → reloaded', () => {
    const d = join(dir, 'cdi');
    mkdirSync(d, { mode: 0o755 });
    writeFileSync(join(d, 'a.json'), spec('a'), { mode: 0o644 });
    const cache = cdiCache();
    const r1 = cache.get([d, join(dir, 'none')]);
    expect([...r1.devices.keys()]).toEqual(['example.com/gpu=a']);
    expect(cache.get([d, join(dir, 'none')])).toBe(r1);
    writeFileSync(join(d, 'b.json'), spec('b'), { mode: 0o644 });
    expect([...cache.get([d, join(dir, 'none')]).devices.keys()].sort()).toEqual(['example.com/gpu=a', 'example.com/gpu=b']);
    writeFileSync(join(d, 'a.json'), spec('c'), { mode: 0o644 });
    expect([...cache.get([d, join(dir, 'none')]).devices.keys()].sort()).toEqual(['example.com/gpu=b', 'example.com/gpu=c']);
    rmSync(join(d, 'b.json'));
    const r2 = cache.get([d, join(dir, 'none')]);
    expect([...r2.devices.keys()]).toEqual(['example.com/gpu=c']);
    expect(cache.get([d, join(dir, 'none')])).toBe(r2);
    mkdirSync(join(dir, 'none'), { mode: 0o755 }); // a spec dir that appears
    expect(cache.get([d, join(dir, 'none')])).not.toBe(r2);
  });
});

describe('host snapshot', () => {
  test('by ld.so.cache, libnvidia-ml, /dev, the recorded nodes and the MIG entries: a change → taken again', () => {
    const root = join(dir, 'driver');
    execFileSync(distBin('nvidia-ctk'), ['mock-driver', '--root', root, '--gpus', '2'], { stdio: 'ignore' });
    const cache = inventoryCache();
    const a = cache.get(root);
    expect(a.driver.gpus).toHaveLength(2);
    expect(cache.get(root)).toBe(a);
    expect(cache.get(`${root}/`)).toBe(a); // the normalised root is the key
    later(join(root, 'etc/ld.so.cache'));
    const b = cache.get(root);
    expect(b).not.toBe(a);
    expect(cache.get(root)).toBe(b);
    chmodSync(join(root, 'dev/nvidia0'), 0o660); // its mode goes into the edits
    const c = cache.get(root);
    expect(c).not.toBe(b);
    expect(c.nodes['/dev/nvidia0']!.fileMode).toBe(0o660);
    writeFileSync(join(root, 'dev/new-file'), ''); // /dev changed
    expect(cache.get(root)).not.toBe(c);
    mkdirSync(join(root, 'proc/driver/nvidia/capabilities/gpu0/mig/gi1/ci0'), { recursive: true }); // MIG state
    const d = cache.get(root);
    expect(cache.get(root)).toBe(d);
    rmSync(join(root, 'proc/driver/nvidia/capabilities/gpu0/mig/gi1/ci0'), { recursive: true });
    expect(cache.get(root)).not.toBe(d);
    expect(cache.stats.misses).toBe(6);
  });
});
