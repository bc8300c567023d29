/**
 * The launcher decides "no GPU" from bytes (GPU_MARKERS); the TypeScript request parser decides from meaning.
 * They must agree in one direction: whenever a config.json has none of the markers, the parser says "no GPU",
 * so the launcher's fast path never skips a container that asked for a GPU.
 */
import { GPU_MARKERS, hasGpuMarker } from '../../../src/runtime/markers.js';
import { parseRequest } from '../../../src/request/parse.js';
import type { RequestPolicy } from '../../../src/request/types.js';
import { getAnnotations, getBoundingCapabilities, getEnv, getMounts, parseSpec } from '../../../src/oci/spec-file.js';

const policies: RequestPolicy[] = [
  { acceptEnvvarWhenUnprivileged: true, acceptVolumeMounts: true, supportedCapabilities: ['compute', 'utility', 'video', 'graphics', 'display', 'compat32', 'ngx'], disableRequire: false },
  { acceptEnvvarWhenUnprivileged: false, acceptVolumeMounts: true, supportedCapabilities: ['compute', 'utility'], disableRequire: true },
];

/** Deterministic pseudo-random generator, so a failure is reproducible. */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const WORDS = ['CUDA', 'NVIDIA', 'VISIBLE_DEVICES', 'DRIVER', 'nvidia', 'gpu', 'all', '0', 'none', 'void', 'compute', 'cdi', 'k8s.io',
  'VERSION', 'REQUIRE', '/var/run', 'container-devices', '/dev/null', 'PATH', '=', '_', '.', '/', 'HOME', 'LD_PRELOAD', 'CAP_SYS_ADMIN'];

function randomSpec(next: () => number): string {
  const word = () => WORDS[Math.floor(next() * WORDS.length)];
  const str = (n: number) => Array.from({ length: 1 + Math.floor(next() * n) }, word).join('');
  const env = Array.from({ length: Math.floor(next() * 6) }, () => `${str(3)}=${str(3)}`);
  const mounts = Array.from({ length: Math.floor(next() * 3) }, () => ({ destination: `/${str(4)}`, source: next() < 0.5 ? '/dev/null' : `/${str(2)}`, type: 'bind' }));
  const annotations = Object.fromEntries(Array.from({ length: Math.floor(next() * 3) }, () => [str(3), str(3)]));
  const bounding = next() < 0.5 ? ['CAP_SYS_ADMIN'] : ['CAP_KILL'];
  return JSON.stringify({ ociVersion: '1.0.2', process: { env, capabilities: { bounding } }, root: { path: 'rootfs' }, mounts, annotations });
}

test('a spec with no GPU marker is never a GPU container', () => {
  const next = rng(42);
  let checked = 0;
  for (let i = 0; i < 5000; i++) {
    const text = randomSpec(next);
    if (hasGpuMarker(text)) continue;
    const spec = parseSpec(text, 'config.json');
    for (const policy of policies) {
      const facts = { env: getEnv(spec), mounts: getMounts(spec).map((m) => ({ source: m.source as string, destination: m.destination as string })), boundingCapabilities: getBoundingCapabilities(spec), annotations: getAnnotations(spec) };
      expect(parseRequest(facts, policy).gpu).toBe(false);
    }
    checked++;
  }
  expect(checked).toBeGreaterThan(1000);
});

test('every way of asking for a GPU carries a marker', () => {
  const asks = [
    { env: ['NVIDIA_VISIBLE_DEVICES=0'] },
    { env: ['CUDA_VERSION=12.2.0'] },
    { mounts: [{ destination: '/var/run/nvidia-container-devices/0', source: '/dev/null' }] },
    { annotations: { 'cdi.k8s.io/gpu': 'nvidia.com/gpu=0' } },
  ];
  for (const ask of asks) expect(hasGpuMarker(JSON.stringify({ ociVersion: '1.0.2', process: { env: ask.env ?? [] }, mounts: ask.mounts ?? [], annotations: ask.annotations ?? {} }))).toBe(true);
  expect(GPU_MARKERS.length).toBeGreaterThan(0);
});
