import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutableDefaults } from '../../../src/config/defaults.js';
import { GPU_MARKERS, gpuMarkers, hasGpuMarker } from '../../../src/runtime/markers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('GPU markers', () => {
  test('the list is the one in launcher-contract.json', () => {
    const json = JSON.parse(readFileSync(join(root, 'src/launcher-contract.json'), 'utf8')) as { gpuMarkers: string[] };
    expect(GPU_MARKERS).toEqual(json.gpuMarkers);
    expect(GPU_MARKERS).toEqual([
      'NVIDIA_', 'CUDA_VERSION', 'cdi.k8s.io/', 'nvidia.com/', 'nvidia-container-devices',
      'nvidia-container-runtime-hook',
    ]);
  });

  const spec = (extra: object): string =>
    JSON.stringify({ ociVersion: '1.0.2', process: { env: ['PATH=/usr/bin', 'HOME=/root'], args: ['sh'] }, ...extra });

  test.each([
    ['NVIDIA_VISIBLE_DEVICES in env', spec({ process: { env: ['NVIDIA_VISIBLE_DEVICES=all'] } })],
    ['CUDA_VERSION in env (legacy CUDA images)', spec({ process: { env: ['CUDA_VERSION=12.4.1'] } })],
    ['CDI annotation', spec({ annotations: { 'cdi.k8s.io/gpu': 'nvidia.com/gpu=0' } })],
    ['nvidia.com/ CDI device name', spec({ annotations: { 'io.kubernetes.cri-o.Devices': 'nvidia.com/gpu=all' } })],
    ['nvidia-container-devices mount', spec({ mounts: [{ destination: '/var/run/nvidia-container-devices/all' }] })],
    ['legacy hook', spec({ hooks: { prestart: [{ path: '/usr/bin/nvidia-container-runtime-hook' }] } })],
  ])('true: %s', (_name, text) => {
    expect(hasGpuMarker(text)).toBe(true);
    expect(hasGpuMarker(Buffer.from(text))).toBe(true);
  });

  test.each([
    ['a plain spec', spec({})],
    ['lower-case nvidia_ env', spec({ process: { env: ['nvidia_visible_devices=all'] } })],
    ['NVIDIA without underscore', spec({ process: { env: ['VENDOR=NVIDIA'] } })],
    ['empty input', ''],
  ])('false: %s', (_name, text) => {
    expect(hasGpuMarker(text)).toBe(false);
    expect(hasGpuMarker(Buffer.from(text))).toBe(false);
  });

  test('a marker among binary bytes is found in a Buffer', () => {
    const buf = Buffer.concat([Buffer.from([0xff, 0x00, 0xfe]), Buffer.from('NVIDIA_DRIVER_CAPABILITIES')]);
    expect(hasGpuMarker(buf)).toBe(true);
  });

  test('config.toml adds its annotation prefixes and swarm resource names', () => {
    const c = mutableDefaults();
    c.runtime.cdi.annotationPrefixes = ['cdi.k8s.io/', 'gpus.example.com/'];
    c.swarmResource = 'DOCKER_RESOURCE_GPU, DOCKER_RESOURCE_NVIDIA ';
    expect(gpuMarkers(c)).toEqual([...GPU_MARKERS, 'gpus.example.com/', 'DOCKER_RESOURCE_GPU', 'DOCKER_RESOURCE_NVIDIA']);
    expect(gpuMarkers(mutableDefaults())).toEqual(GPU_MARKERS);
  });
});

describe('launcher contract', () => {
  test('the committed native header is exactly what scripts/gen-launcher-contract.mjs generates', () => {
    const generated = execFileSync(process.execPath, [join(root, 'scripts/gen-launcher-contract.mjs'), '--stdout'], {
      encoding: 'utf8',
    });
    const committed = readFileSync(join(root, 'native/include/launcher_contract.h'), 'utf8');
    expect(committed).toBe(generated);
    expect(committed).toContain('do not edit');
    expect(committed).toContain('{"bundle", \'v\', "bundle"},');
    expect(committed).toContain('{"b", \'v\', "bundle"},');
  });
});
