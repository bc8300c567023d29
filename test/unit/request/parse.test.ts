import { NvrError } from '../../../src/errors.js';
import { formatSelector } from '../../../src/request/devices.js';
import { DEFAULT_REQUEST_POLICY, cudaMajorMinor, parseGoBool, parseRequest } from '../../../src/request/parse.js';
import type { ContainerFacts, DeviceRequest, RequestPolicy } from '../../../src/request/types.js';
import { evaluateRequirements } from '../../../src/require/evaluate.js';
import { thrown } from '../../helpers/errors.js';

const PRIV = ['CAP_CHOWN', 'CAP_SYS_ADMIN'];
const UNPRIV = ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'];

function facts(env: string[], more: Partial<ContainerFacts> = {}): ContainerFacts {
  return { env, mounts: [], boundingCapabilities: UNPRIV, annotations: {}, ...more };
}

function policy(p: Partial<RequestPolicy> = {}): RequestPolicy {
  return { ...DEFAULT_REQUEST_POLICY, ...p };
}

function req(env: string[], more: Partial<ContainerFacts> = {}, p: Partial<RequestPolicy> = {}): DeviceRequest {
  return parseRequest(facts(env, more), policy(p));
}

const devMount = (id: string) => ({ source: '/dev/null', destination: `/var/run/nvidia-container-devices/${id}` });

describe('parseRequest: is it a GPU container?', () => {
  it.each([
    ['no env', []],
    ['unset', ['PATH=/bin']],
    ['empty', ['NVIDIA_VISIBLE_DEVICES=']],
    ['void', ['NVIDIA_VISIBLE_DEVICES=void']],
    ['0,void', ['NVIDIA_VISIBLE_DEVICES=0,void']],
    ['CUDA_VERSION with NVIDIA_REQUIRE_CUDA', ['CUDA_VERSION=12.4.1', 'NVIDIA_REQUIRE_CUDA=cuda>=12.4']],
  ])('%s → not GPU', (_n, env) => {
    const r = req(env);
    expect(r).toMatchObject({ gpu: false, devices: [], capabilities: [], requirements: [], source: 'none' });
    expect(r.reasons.length).toBeGreaterThan(0);
  });

  it('validates nothing else in a non-GPU container', () => {
    const r = req([
      'NVIDIA_DRIVER_CAPABILITIES=bogus',
      'NVIDIA_REQUIRE_CUDA=cuda==12',
      'NVIDIA_MIG_CONFIG_DEVICES=all',
      'NVIDIA_VISIBLE_DEVICES=void',
    ]);
    expect(r.gpu).toBe(false);
  });

  it('all → every GPU with default capabilities', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=all']);
    expect(r).toMatchObject({
      gpu: true,
      devices: [{ kind: 'all' }],
      capabilities: ['compute', 'utility'],
      requirements: [],
      source: 'env',
    });
  });

  it('none → GPU container without devices', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=none'])).toMatchObject({ gpu: true, devices: [], source: 'env' });
  });

  it('duplicate env keys: the last one wins', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_VISIBLE_DEVICES=1']).devices).toEqual([{ kind: 'index', index: 1 }]);
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_VISIBLE_DEVICES=void']).gpu).toBe(false);
  });

  it('reports bad devices as DEVICE errors', () => {
    expect(thrown(() => req(['NVIDIA_VISIBLE_DEVICES=gpu0'])).code).toBe('DEVICE');
  });
});

describe('parseRequest: capabilities', () => {
  it('reads NVIDIA_DRIVER_CAPABILITIES against the policy', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=video,graphics,compute']).capabilities).toEqual([
      'compute', 'graphics', 'video',
    ]);
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=all'], {}, { supportedCapabilities: ['utility'] }).capabilities)
      .toEqual(['utility']);
    expect(thrown(() => req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=compute,bogus'])).code).toBe('INPUT');
  });
});

describe('parseRequest: requirements', () => {
  it('collects every NVIDIA_REQUIRE_* but JETPACK, sorted by name', () => {
    const r = req([
      'NVIDIA_VISIBLE_DEVICES=0',
      'NVIDIA_REQUIRE_ZED=driver>=500',
      'NVIDIA_REQUIRE_CUDA=cuda>=12.0 brand=tesla',
      'NVIDIA_REQUIRE_JETPACK=csv-mounts=all',
      'NVIDIA_REQUIRE_ARCH=arch>=8.0',
    ]);
    expect(r.requirements).toEqual(['arch>=8.0', 'cuda>=12.0 brand=tesla', 'driver>=500']);
  });

  it('keeps a requirement with an unknown key: it is read when evaluated (libnvidia-container semantics)', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=11.6 foo=bar']).requirements).toEqual(['cuda>=11.6 foo=bar']);
  });

  it('every name starting with NVIDIA_REQUIRE_JETPACK is not a requirement', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS=x=y', 'NVIDIA_REQUIRE_JETPACK=csv-mounts=all', 'NVIDIA_REQUIRE_ARCH=arch>=8.0']);
    expect(r.requirements).toEqual(['arch>=8.0']);
  });

  it('skips blank requirements', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_X=  ']).requirements).toEqual([]);
  });

  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('NVIDIA_DISABLE_REQUIRE=%s disables them', (v) => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda==bad', `NVIDIA_DISABLE_REQUIRE=${v}`]);
    expect(r.requirements).toEqual([]);
    expect(r.reasons.join('\n')).toMatch(/NVIDIA_DISABLE_REQUIRE/);
  });

  it.each(['0', 'false', 'yes', 'on', ''])('NVIDIA_DISABLE_REQUIRE=%s does not', (v) => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=12', `NVIDIA_DISABLE_REQUIRE=${v}`]);
    expect(r.requirements).toEqual(['cuda>=12']);
  });

  it('policy.disableRequire disables them too', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=12'], {}, { disableRequire: true });
    expect(r.requirements).toEqual([]);
    expect(r.reasons.join('\n')).toMatch(/disable-require/);
  });

  it('parseGoBool follows strconv.ParseBool', () => {
    expect(['1', 't', 'T', 'TRUE', 'true', 'True'].map(parseGoBool)).toEqual(Array(6).fill(true));
    expect(['0', 'f', 'F', 'FALSE', 'false', 'False'].map(parseGoBool)).toEqual(Array(6).fill(false));
    expect(['yes', 'tRUE', ' true', ''].map(parseGoBool)).toEqual(Array(4).fill(undefined));
  });
});

describe('parseRequest: MIG administration', () => {
  it('privileged: NVIDIA_MIG_CONFIG_DEVICES / _MONITOR_DEVICES ask for the global capabilities', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_MIG_CONFIG_DEVICES=all'], { boundingCapabilities: PRIV }).migAdmin).toEqual(['config']);
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_MIG_MONITOR_DEVICES=0', 'NVIDIA_MIG_CONFIG_DEVICES=0'], { boundingCapabilities: PRIV }).migAdmin).toEqual(['config', 'monitor']);
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_MIG_CONFIG_DEVICES='], { boundingCapabilities: PRIV }).migAdmin).toBeUndefined();
  });
  it('the CDI path ignores them, as the toolkit does', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0', 'NVIDIA_MIG_CONFIG_DEVICES=all'], { boundingCapabilities: PRIV }).migAdmin).toBeUndefined();
  });
});

describe('parseRequest: swarm-resource (Docker Swarm generic resources)', () => {
  const swarm = { swarmResource: ['DOCKER_RESOURCE_GPU', 'DOCKER_RESOURCE_NVIDIA'] };
  it('the first swarm-resource name present replaces NVIDIA_VISIBLE_DEVICES', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=all', 'DOCKER_RESOURCE_NVIDIA=3', 'DOCKER_RESOURCE_GPU=1,2'], {}, swarm);
    expect(r.devices.map(formatSelector)).toEqual(['1', '2']);
    expect(r.reasons.join('\n')).toMatch(/DOCKER_RESOURCE_GPU="1,2" \(swarm-resource; NVIDIA_VISIBLE_DEVICES is not consulted\)/);
    expect(req(['DOCKER_RESOURCE_NVIDIA=GPU-6f1a6d2e-6f43-4a77-a4f4-25bb8ba95d33'], {}, swarm).devices.map(formatSelector)).toEqual(['GPU-6f1a6d2e-6f43-4a77-a4f4-25bb8ba95d33']);
  });
  it('without swarm-resource the variables mean nothing; without them NVIDIA_VISIBLE_DEVICES is read', () => {
    expect(req(['DOCKER_RESOURCE_GPU=1']).gpu).toBe(false);
    expect(req(['NVIDIA_VISIBLE_DEVICES=0'], {}, swarm).devices.map(formatSelector)).toEqual(['0']);
  });
  it('they are env requests: refused for unprivileged containers under the secure setting', () => {
    expect(req(['DOCKER_RESOURCE_GPU=1'], {}, { ...swarm, acceptEnvvarWhenUnprivileged: false }).gpu).toBe(false);
  });
});

describe('parseRequest: legacy CUDA images', () => {
  it('CUDA_VERSION alone → all GPUs, all supported capabilities, cuda>=major.minor', () => {
    const r = req(['CUDA_VERSION=11.2.1']);
    expect(r).toMatchObject({
      gpu: true,
      devices: [{ kind: 'all' }],
      capabilities: ['compat32', 'compute', 'display', 'graphics', 'ngx', 'utility', 'video'],
      requirements: ['cuda>=11.2'],
      source: 'legacy-cuda',
    });
  });

  it('an empty NVIDIA_DRIVER_CAPABILITIES gives a legacy image the default, not all (as the toolkit)', () => {
    const r = req(['CUDA_VERSION=11.2.1', 'NVIDIA_DRIVER_CAPABILITIES=']);
    expect(r.capabilities).toEqual(['compute', 'utility']);
    expect(r.reasons.join('\n')).toMatch(/NVIDIA_DRIVER_CAPABILITIES empty: default compute,utility/);
  });

  it('an empty NVIDIA_REQUIRE_CUDA still makes a legacy image', () => {
    expect(req(['CUDA_VERSION=12.4', 'NVIDIA_REQUIRE_CUDA=']).source).toBe('legacy-cuda');
  });

  it('keeps explicit capabilities and devices, and adds the CUDA requirement after the others', () => {
    const r = req([
      'CUDA_VERSION=10.0.130',
      'NVIDIA_VISIBLE_DEVICES=1',
      'NVIDIA_DRIVER_CAPABILITIES=compute',
      'NVIDIA_REQUIRE_DRIVER=driver>=410',
    ]);
    expect(r).toMatchObject({
      devices: [{ kind: 'index', index: 1 }],
      capabilities: ['compute'],
      requirements: ['driver>=410', 'cuda>=10.0'],
      source: 'env',
    });
  });

  it('limits capabilities to the supported set', () => {
    expect(req(['CUDA_VERSION=12.0'], {}, { supportedCapabilities: ['compute', 'utility', 'video'] }).capabilities)
      .toEqual(['compute', 'utility', 'video']);
  });

  it('NVIDIA_VISIBLE_DEVICES=void still wins', () => {
    expect(req(['CUDA_VERSION=12.0', 'NVIDIA_VISIBLE_DEVICES=void']).gpu).toBe(false);
  });

  it('rejects an invalid CUDA_VERSION naming it', () => {
    const e = thrown(() => req(['CUDA_VERSION=twelve']));
    expect(e.code).toBe('INPUT');
    expect(e.message).toBe('CUDA_VERSION: "twelve" is not a CUDA version (expected e.g. 12.4.1)');
  });

  it('does not check CUDA_VERSION when requirements are disabled', () => {
    expect(req(['CUDA_VERSION=twelve', 'NVIDIA_DISABLE_REQUIRE=true']).requirements).toEqual([]);
  });

  it('cudaMajorMinor parses like the peer', () => {
    expect(['11.2.1', '12', 'v12.4', '12.4.0-rc1', '012.04'].map(cudaMajorMinor)).toEqual([
      '11.2', '12.0', '12.4', '12.4', '12.4',
    ]);
    expect(() => cudaMajorMinor('12.x')).toThrow(NvrError);
    expect(() => cudaMajorMinor('')).toThrow(NvrError);
  });

  it('components up to uint32: an absurd version is a requirement that fails, not "not a CUDA version"', () => {
    expect(cudaMajorMinor('4294967295.4294967295.1')).toBe('4294967295.4294967295');
    expect(req(['CUDA_VERSION=4294967295.0']).requirements).toEqual(['cuda>=4294967295.0']);
    expect(() => evaluateRequirements(['cuda>=4294967295.0'], { cudaVersion: '12.4', devices: [] })).toThrow(/unsatisfied condition: cuda>=4294967295\.0/);
    expect(() => cudaMajorMinor('4294967296.0')).toThrow(/not a CUDA version/);
  });
});

describe('parseRequest: privilege (SECURITY R4)', () => {
  const refuse = { acceptEnvvarWhenUnprivileged: false };

  it('accepts env requests from unprivileged containers by default', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=all']).gpu).toBe(true);
  });

  it('ignores env requests from unprivileged containers when the policy refuses them', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=all'], {}, refuse);
    expect(r.gpu).toBe(false);
    expect(r.reasons).toContain(
      'NVIDIA_VISIBLE_DEVICES ignored: container is unprivileged and accept-nvidia-visible-devices-envvar-when-unprivileged = false',
    );
    expect(req(['CUDA_VERSION=12.0'], {}, refuse).gpu).toBe(false);
  });

  it('still accepts env requests from privileged containers', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=all'], { boundingCapabilities: PRIV }, refuse).gpu).toBe(true);
  });

  it.each(['NVIDIA_MIG_CONFIG_DEVICES', 'NVIDIA_MIG_MONITOR_DEVICES'])('rejects %s in an unprivileged GPU container', (name) => {
    const e = thrown(() => req(['NVIDIA_VISIBLE_DEVICES=all', `${name}=all`]));
    expect(e.message).toBe(`cannot set ${name} in a non-privileged container`);
    expect(req(['NVIDIA_VISIBLE_DEVICES=all', `${name}=all`], { boundingCapabilities: PRIV }).gpu).toBe(true);
    expect(req(['NVIDIA_VISIBLE_DEVICES=all', `${name}=`]).gpu).toBe(true);
  });
});

describe('parseRequest: volume mounts', () => {
  const accept = { acceptVolumeMounts: true, acceptEnvvarWhenUnprivileged: false };

  it('reads device ids from /dev/null mounts and prefers them to the env', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=all'], {
      mounts: [
        devMount('0'),
        devMount('GPU-12345678-9abc-def0-1234-56789abcdef0'),
        devMount('1:2'),
        devMount('cdi/nvidia.com/gpu/3'),
        devMount('imex/4'),
        { source: '/proc', destination: '/proc' },
        { source: '/tmp/x', destination: '/var/run/nvidia-container-devices/5' }, // not /dev/null
      ],
    }, accept);
    expect(r.source).toBe('volume-mounts');
    expect(r.devices.map(formatSelector)).toEqual([
      '0', 'GPU-12345678-9abc-def0-1234-56789abcdef0', '1:2', 'nvidia.com/gpu=3',
    ]);
  });

  it('accepts all and collapses duplicates', () => {
    expect(req([], { mounts: [devMount('all')] }, accept).devices).toEqual([{ kind: 'all' }]);
    expect(req([], { mounts: [devMount('0'), devMount('0/')] }, accept).devices).toEqual([{ kind: 'index', index: 0 }]);
  });

  it('does not let ".." escape the device-list root', () => {
    const r = req([], { mounts: [{ source: '/dev/null', destination: '/var/run/nvidia-container-devices/../x/0' }] }, accept);
    expect(r.gpu).toBe(false);
  });

  it('ignores mounts when the policy does not accept them, and says so', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=1'], { mounts: [devMount('0')] });
    expect(r.source).toBe('env');
    expect(r.devices).toEqual([{ kind: 'index', index: 1 }]);
    expect(r.reasons.join('\n')).toMatch(/volume mount.*ignored/);
    expect(req([], { mounts: [devMount('0')] }).gpu).toBe(false);
  });

  it('falls back to the env when no device mount is present', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=1'], { boundingCapabilities: PRIV }, accept).source).toBe('env');
  });

  it('rejects a malformed cdi mount and garbage ids', () => {
    expect(thrown(() => req([], { mounts: [devMount('cdi/nvidia.com/0')] }, accept)).code).toBe('DEVICE');
    expect(thrown(() => req([], { mounts: [devMount('gpu0')] }, accept)).message).toMatch(/volume mount.*"gpu0"/);
  });
});

/** Deterministic PRNG (mulberry32) so a failure is reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseRequest: property', () => {
  const keys = ['PATH', 'HOME', 'CUDA_HOME', 'NV_VISIBLE', 'nvidia_visible_devices', 'XNVIDIA_REQUIRE_CUDA', 'CUDA_VERSIONS', 'LD_LIBRARY_PATH', 'A', ''];
  const values = ['all', '0', 'void', 'none', '', 'cuda>=99', '=', 'GPU-1', 'compute,bogus', '12.4'];

  it('an env with no NVIDIA_* key and no CUDA_VERSION is never a GPU container', () => {
    const rand = rng(20240601);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    for (let i = 0; i < 500; i++) {
      const env: string[] = [];
      const n = Math.floor(rand() * 8);
      for (let j = 0; j < n; j++) {
        const key = rand() < 0.3 ? String.fromCharCode(...Array.from({ length: 1 + Math.floor(rand() * 6) }, () => 33 + Math.floor(rand() * 90))) : pick(keys);
        if (key.startsWith('NVIDIA_') || key === 'CUDA_VERSION') continue;
        env.push(rand() < 0.1 ? key : `${key}=${pick(values)}`);
      }
      for (const bounding of [PRIV, UNPRIV]) {
        for (const acceptVolumeMounts of [false, true]) {
          const r = parseRequest(facts(env, { boundingCapabilities: bounding }), policy({ acceptVolumeMounts }));
          if (r.gpu) throw new Error(`env ${JSON.stringify(env)} was taken as a GPU request`);
          expect(r.source).toBe('none');
        }
      }
    }
  });
});
