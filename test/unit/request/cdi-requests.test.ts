import { cdiAnnotationKeys, cdiDevicesFromAnnotations } from '../../../src/request/cdi-requests.js';
import { DEFAULT_REQUEST_POLICY, parseRequest } from '../../../src/request/parse.js';
import type { ContainerFacts, RequestPolicy } from '../../../src/request/types.js';
import { thrown } from '../../helpers/errors.js';

const UNPRIV = ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'];
const devMount = (id: string) => ({ source: '/dev/null', destination: `/var/run/nvidia-container-devices/${id}` });

function req(facts: Partial<ContainerFacts>, p: Partial<RequestPolicy> = {}) {
  return parseRequest({ env: [], mounts: [], boundingCapabilities: UNPRIV, annotations: {}, ...facts }, { ...DEFAULT_REQUEST_POLICY, ...p });
}

describe('cdiDevicesFromAnnotations', () => {
  it('reads every key with a prefix, keys sorted, values split on commas, duplicates collapsed', () => {
    const a = {
      'cdi.k8s.io/z': 'nvidia.com/gpu=1',
      'cdi.k8s.io/a': 'nvidia.com/gpu=0,vendor.com/net=eth0,nvidia.com/gpu=1',
      'other/x': 'nvidia.com/gpu=3',
      'io.kubernetes.cri.container-type': 'container',
    };
    expect(cdiDevicesFromAnnotations(a)).toEqual({
      names: ['nvidia.com/gpu=0', 'vendor.com/net=eth0', 'nvidia.com/gpu=1'],
      keys: ['cdi.k8s.io/a', 'cdi.k8s.io/z'],
    });
  });

  it('honours configured prefixes, and an empty prefix matches nothing', () => {
    const a = { 'example.com/gpu': 'nvidia.com/gpu=2', 'cdi.k8s.io/x': 'nvidia.com/gpu=0' };
    expect(cdiDevicesFromAnnotations(a, ['example.com/']).names).toEqual(['nvidia.com/gpu=2']);
    expect(cdiDevicesFromAnnotations(a, ['example.com/', 'cdi.k8s.io/']).names).toEqual(['nvidia.com/gpu=0', 'nvidia.com/gpu=2']);
    expect(cdiAnnotationKeys(a, [''])).toEqual([]);
  });

  it.each([['1'], ['nvidia.com/gpu=0, nvidia.com/gpu=1'], [''], ['nvidia.com/gpu='], ['/dev/nvidia0']])(
    'rejects an unqualified value %j naming the annotation',
    (value) => {
      const e = thrown(() => cdiDevicesFromAnnotations({ 'cdi.k8s.io/x': value }));
      expect(e.code).toBe('INPUT');
      expect(e.message).toMatch(/^annotation "cdi\.k8s\.io\/x": ".*" is not a fully-qualified CDI device name \(vendor\/class=name\)$/);
    },
  );

  it('gives the exact message for "1"', () => {
    expect(thrown(() => cdiDevicesFromAnnotations({ 'cdi.k8s.io/x': '1' })).message).toBe(
      'annotation "cdi.k8s.io/x": "1" is not a fully-qualified CDI device name (vendor/class=name)',
    );
  });
});

describe('parseRequest with CDI requests', () => {
  const ann = { 'cdi.k8s.io/nvidia-device-plugin_GPU-1': 'nvidia.com/gpu=1' };

  it('annotations win over volume mounts and the env, and are not privilege-gated', () => {
    const r = req(
      { env: ['NVIDIA_VISIBLE_DEVICES=all'], mounts: [devMount('0')], annotations: ann },
      { acceptVolumeMounts: true, acceptEnvvarWhenUnprivileged: false },
    );
    expect(r).toMatchObject({ gpu: true, source: 'annotations', devices: [{ kind: 'cdi', name: 'nvidia.com/gpu=1' }], cdiDevices: ['nvidia.com/gpu=1'] });
    expect(r.reasons.join('\n')).toMatch(/CDI annotations \(cdi\.k8s\.io\/nvidia-device-plugin_GPU-1\)/);
  });

  it('the CDI path ignores capabilities and requirements, and says so', () => {
    const r = req({ env: ['NVIDIA_DRIVER_CAPABILITIES=bogus', 'NVIDIA_REQUIRE_CUDA=cuda>=99.0'], annotations: ann });
    expect(r.capabilities).toEqual([]);
    expect(r.requirements).toEqual([]);
    expect(r.reasons.join('\n')).toMatch(/NVIDIA_DRIVER_CAPABILITIES is ignored on the CDI path/);
    expect(r.reasons.join('\n')).toMatch(/requirements .* not checked on the CDI path/);
  });

  it('fully-qualified names in NVIDIA_VISIBLE_DEVICES take the CDI path in auto mode (mixed ones do not)', () => {
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=0,nvidia.com/gpu=1'] }).cdiDevices).toBeUndefined();
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1,nvidia.com/gpu=0'] }).cdiDevices).toEqual(['nvidia.com/gpu=1', 'nvidia.com/gpu=0']);
    const direct = req({ env: ['NVIDIA_VISIBLE_DEVICES=1'] });
    expect(direct.cdiDevices).toBeUndefined();
    expect(direct.capabilities).toEqual(['compute', 'utility']);
  });

  it('the cdi volume-mount form is a CDI request when mounts are accepted', () => {
    const r = req({ mounts: [devMount('cdi/nvidia.com/gpu/3')] }, { acceptVolumeMounts: true });
    expect(r).toMatchObject({ source: 'volume-mounts', cdiDevices: ['nvidia.com/gpu=3'] });
    expect(req({ mounts: [devMount('cdi/nvidia.com/gpu/3')] }).gpu).toBe(false);
  });

  it('mode cdi qualifies plain env entries with the default kind', () => {
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=0,all'] }, { mode: 'cdi' }).cdiDevices).toEqual(['nvidia.com/gpu=all']);
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=0,nvidia.com/gpu=1'] }, { mode: 'cdi' }).cdiDevices).toEqual(['nvidia.com/gpu=0', 'nvidia.com/gpu=1']);
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=0'] }, { mode: 'cdi', defaultKind: 'example.com/gpu' }).cdiDevices).toEqual(['example.com/gpu=0']);
  });

  it('legacy mode ignores annotations (with a reason) and rejects CDI names', () => {
    const r = req({ env: ['NVIDIA_VISIBLE_DEVICES=2'], annotations: ann }, { mode: 'legacy' });
    expect(r).toMatchObject({ source: 'env', devices: [{ kind: 'index', index: 2 }] });
    expect(r.cdiDevices).toBeUndefined();
    expect(r.reasons.join('\n')).toMatch(/CDI annotations ignored .*mode = "legacy"/);
    expect(req({ env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1'] }, { mode: 'legacy' }).cdiDevices).toBeUndefined();
  });

  it('a bad annotation fails the request even when the env asks for nothing', () => {
    expect(thrown(() => req({ annotations: { 'cdi.k8s.io/x': '1' } })).code).toBe('INPUT');
  });

  it('annotations without a prefix match are not a request', () => {
    expect(req({ annotations: { 'example.com/x': 'nvidia.com/gpu=1' } }).gpu).toBe(false);
  });
});

describe('parseRequest: the device plugin volume-mounts strategy (NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices)', () => {
  const env = ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices'];

  it('the mounts decide when they are accepted', () => {
    const r = req({ env, mounts: [devMount('GPU-12345678-9abc-def0-1234-56789abcdef0')] }, { acceptVolumeMounts: true });
    expect(r).toMatchObject({ source: 'volume-mounts', devices: [{ kind: 'uuid', uuid: 'GPU-12345678-9abc-def0-1234-56789abcdef0' }] });
  });

  it('no mount under the root: not a GPU container', () => {
    const r = req({ env: ['NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices/'] }, { acceptVolumeMounts: true });
    expect(r.gpu).toBe(false);
    expect(r.reasons.join('\n')).toMatch(/no device is mounted there/);
  });

  it('mounts not accepted: a clear error naming the setting, not a grammar error', () => {
    const e = thrown(() => req({ env, mounts: [devMount('0')] }));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(/accept-nvidia-visible-devices-as-volume-mounts = false$/);
    expect(e.fix).toMatch(/accept-nvidia-visible-devices-as-volume-mounts = true/);
  });

  it('an unprivileged container under the secure policy is simply refused the env', () => {
    expect(req({ env }, { acceptEnvvarWhenUnprivileged: false }).gpu).toBe(false);
  });
});
