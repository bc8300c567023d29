import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BMC_NVML_BUS_ID, drmNodesOf, MOCK_FEATURES, normalizeFeatures } from '../../../src/mock/features.js';
import { findModel, GPU_MODELS } from '../../../src/mock/models.js';
import {
  cudaVersionNumber,
  generateTopology,
  parseFeatures,
  parseTopologyJson,
  readTopologyFile,
  serializeTopologyText,
  TOPOLOGY_SCHEMA,
  validateTopology,
  withFeatures,
} from '../../../src/mock/topology.js';
import type { MockTopology } from '../../../src/mock/topology-types.js';
import { thrown } from '../../helpers/errors.js';

const UUID_RE = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('models', () => {
  it('knows the listed boards with their NVML facts', () => {
    const h100 = findModel('NVIDIA H100 80GB HBM3');
    expect(h100).toMatchObject({ computeCapability: '9.0', architecture: 'Hopper', memoryMiB: 81559, pciDeviceId: 0x233010de });
    expect(h100.migProfiles.map((p) => p.name)).toEqual(['1g.10gb', '2g.20gb', '3g.40gb', '7g.80gb']);
    expect(findModel('nvidia a100-sxm4-40gb')).toMatchObject({ name: 'NVIDIA A100-SXM4-40GB', pciDeviceId: 0x20b010de, architecture: 'Ampere' });
    expect(findModel('Tesla T4')).toMatchObject({ brand: 'Tesla', computeCapability: '7.5', migProfiles: [] });
    expect(findModel('NVIDIA B200')).toMatchObject({ computeCapability: '10.0', architecture: 'Blackwell' });
    expect(findModel('NVIDIA H200').pciDeviceId).toBe(0x233510de);
    expect(findModel('NVIDIA L4')).toMatchObject({ architecture: 'Ada', migProfiles: [] });
  });

  it('every MIG-capable model has 1g, 2g and 3g profiles (needed for --mig)', () => {
    for (const m of GPU_MODELS.filter((x) => x.migProfiles.length > 0)) {
      for (const s of ['1g.', '2g.', '3g.']) expect(m.migProfiles.some((p) => p.name.startsWith(s))).toBe(true);
    }
  });

  it('an unknown model keeps its name and gets Hopper 9.0 defaults', () => {
    expect(findModel('My Fancy GPU')).toMatchObject({ name: 'My Fancy GPU', architecture: 'Hopper', computeCapability: '9.0' });
  });
});

describe('generateTopology', () => {
  it('defaults to one H100 with driver 550.54.15 and CUDA 12.4', () => {
    const t = generateTopology();
    expect(t.driverVersion).toBe('550.54.15');
    expect(t.cudaVersion).toBe('12.4');
    expect(t.gpus).toHaveLength(1);
    expect(t.gpus[0]).toMatchObject({ minor: 0, name: 'NVIDIA H100 80GB HBM3', brand: 'Nvidia', pciBusId: '00000000:18:00.0', migEnabled: false, migDevices: [] });
    expect(t.gpus[0]!.uuid).toMatch(UUID_RE);
  });

  it.each([1, 8, 64, 254])('%i GPUs: unique well-formed UUIDs and bus ids, minors = indices, valid', (n) => {
    const t = generateTopology({ gpus: n, model: 'NVIDIA A100-SXM4-40GB' });
    expect(t.gpus).toHaveLength(n);
    expect(new Set(t.gpus.map((g) => g.uuid)).size).toBe(n);
    expect(new Set(t.gpus.map((g) => g.pciBusId)).size).toBe(n);
    expect(t.gpus.map((g) => g.minor)).toEqual([...Array(n).keys()]);
    for (const g of t.gpus) expect(g.uuid).toMatch(UUID_RE);
    expect(validateTopology(JSON.parse(JSON.stringify(t)), 'generated')).toEqual(t);
  });

  it('uses the bus numbers of a real 8-GPU board', () => {
    const t = generateTopology({ gpus: 8 });
    expect(t.gpus.map((g) => g.pciBusId.slice(9, 11))).toEqual(['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db']);
  });

  it('is deterministic and depends on the model', () => {
    expect(generateTopology({ gpus: 4 })).toEqual(generateTopology({ gpus: 4 }));
    expect(generateTopology({ model: 'NVIDIA L4' }).gpus[0]!.uuid).not.toBe(generateTopology().gpus[0]!.uuid);
  });

  it('--mig gives every GPU three MIG devices with distinct UUIDs', () => {
    const t = generateTopology({ gpus: 2, mig: true });
    for (const g of t.gpus) {
      expect(g.migEnabled).toBe(true);
      expect(g.migDevices.map((m) => [m.gpuInstanceId, m.computeInstanceId, m.profile])).toEqual([
        [1, 0, '3g.40gb'], [2, 0, '2g.20gb'], [3, 0, '1g.10gb'],
      ]);
      for (const m of g.migDevices) expect(m.uuid).toMatch(/^MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
    const all = t.gpus.flatMap((g) => [g.uuid, ...g.migDevices.map((m) => m.uuid)]);
    expect(new Set(all).size).toBe(8);
    expect(validateTopology(t, 'generated')).toBe(t);
  });

  it('rejects bad flags with INPUT errors naming the flag', () => {
    expect(thrown(() => generateTopology({ gpus: 0 })).message).toContain('--gpus');
    expect(thrown(() => generateTopology({ gpus: 255 })).code).toBe('INPUT'); // minors 254/255: modeset, ctl
    expect(thrown(() => generateTopology({ gpus: 1.5 })).message).toContain('--gpus');
    expect(thrown(() => generateTopology({ driverVersion: '550' })).message).toContain('--driver-version');
    expect(generateTopology({ driverVersion: '535.104' }).driverVersion).toBe('535.104');
    expect(thrown(() => generateTopology({ cudaVersion: '12' })).message).toContain('--cuda-version');
    expect(thrown(() => generateTopology({ model: 'bad\tname' })).message).toContain('--model');
    const e = thrown(() => generateTopology({ model: 'Tesla T4', mig: true }));
    expect(e.message).toContain('does not support MIG');
    expect(e.fix).toBeTruthy();
  });
});

describe('topology JSON validation', () => {
  const valid = (): MockTopology => JSON.parse(JSON.stringify(generateTopology({ gpus: 2, mig: true })));
  const err = (value: unknown): string => thrown(() => validateTopology(value, 'topology file t.json')).message;

  it('accepts a generated topology', () => {
    expect(validateTopology(valid(), 'x').gpus).toHaveLength(2);
  });

  it('reports a truncated file as invalid JSON with the file name', () => {
    const text = JSON.stringify(valid());
    const e = thrown(() => parseTopologyJson(text.slice(0, text.length / 2), 'topology file t.json'));
    expect(e.code).toBe('TOPOLOGY');
    expect(e.message).toMatch(/^topology file t\.json: invalid JSON: /);
    expect(e.fix).toContain('docs/mock-driver.md');
  });

  it('names the field path and the problem', () => {
    const dupMinor = valid();
    dupMinor.gpus[1]!.minor = 0;
    expect(err(dupMinor)).toBe('topology file t.json: /gpus/1/minor: duplicate minor 0 (also /gpus/0)');

    const badUuid = valid();
    badUuid.gpus[1]!.uuid = 'GPU-1234';
    expect(err(badUuid)).toMatch(/^topology file t\.json: \/gpus\/1\/uuid: must match pattern/);

    const dupUuid = valid();
    dupUuid.gpus[1]!.migDevices[2]!.uuid = dupUuid.gpus[0]!.migDevices[0]!.uuid;
    expect(err(dupUuid)).toContain('/gpus/1/migDevices/2/uuid: duplicate UUID');

    const bigMinor = valid();
    bigMinor.gpus[0]!.minor = 254; // nvidia-modeset's minor
    expect(err(bigMinor)).toBe('topology file t.json: /gpus/0/minor: must be <= 253');

    const busId = valid();
    busId.gpus[0]!.pciBusId = '0000:18:00.0';
    expect(err(busId)).toContain('/gpus/0/pciBusId: must match pattern');

    const dupBus = valid();
    dupBus.gpus[1]!.pciBusId = dupBus.gpus[0]!.pciBusId;
    expect(err(dupBus)).toContain('/gpus/1/pciBusId: duplicate bus id');

    const missing = valid() as unknown as Record<string, unknown>;
    delete missing['cudaVersion'];
    expect(err(missing)).toBe('topology file t.json: (top level): missing field "cudaVersion"');

    const extra = valid() as unknown as { gpus: Array<Record<string, unknown>> };
    extra.gpus[0]!['colour'] = 'green';
    expect(err(extra)).toBe('topology file t.json: /gpus/0: unknown field "colour"');

    const brand = valid();
    brand.gpus[0]!.brand = 'Nvida';
    expect(err(brand)).toContain('/gpus/0/brand: must be one of');

    const migOff = valid();
    migOff.gpus[0]!.migEnabled = false;
    expect(err(migOff)).toContain('/gpus/0/migDevices: MIG devices listed but migEnabled is false');

    const dupInstance = valid();
    dupInstance.gpus[0]!.migDevices[1]!.gpuInstanceId = 1;
    expect(err(dupInstance)).toContain('/gpus/0/migDevices/1: duplicate GPU instance 1 compute instance 0');

    expect(err({ ...valid(), driverVersion: 'latest' })).toContain('/driverVersion: must match pattern');
    expect(err({ ...valid(), gpus: [] })).toContain('/gpus: must NOT have fewer than 1 items');
  });

  it('readTopologyFile reads and validates a file, and explains a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvmock-topo-'));
    const file = join(dir, 't.json');
    writeFileSync(file, JSON.stringify(valid()));
    expect(readTopologyFile(file).gpus).toHaveLength(2);
    const e = thrown(() => readTopologyFile(join(dir, 'nope.json')));
    expect(e.code).toBe('TOPOLOGY');
    expect(e.message).toContain(`topology file ${join(dir, 'nope.json')}: cannot read`);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('features', () => {
  const valid = (): MockTopology => JSON.parse(JSON.stringify(generateTopology({ gpus: 2 })));
  const err = (value: unknown): string => thrown(() => validateTopology(value, 'topology file t.json')).message;

  it('the schema lists the five features as an optional, unique array', () => {
    expect(MOCK_FEATURES).toEqual(['graphics', 'gds', 'mofed', 'nvswitch', 'gdrcopy']);
    expect(TOPOLOGY_SCHEMA.required).not.toContain('features');
    expect(TOPOLOGY_SCHEMA.properties.features).toEqual({ type: 'array', uniqueItems: true, items: { type: 'string', enum: MOCK_FEATURES } });
  });

  it('accepts no field, an empty list and any set of features in any order', () => {
    expect(validateTopology(valid(), 'x').features).toBeUndefined();
    expect(validateTopology({ ...valid(), features: [] }, 'x').features).toEqual([]);
    expect(validateTopology({ ...valid(), features: ['gdrcopy', 'graphics'] }, 'x').features).toEqual(['gdrcopy', 'graphics']);
    expect(validateTopology({ ...valid(), features: [...MOCK_FEATURES] }, 'x').features).toEqual(MOCK_FEATURES);
  });

  it('refuses unknown, duplicated or non-string features and a non-array', () => {
    expect(err({ ...valid(), features: ['graphic'] })).toMatch(/^topology file t\.json: \/features\/0: must be one of graphics, gds, mofed, nvswitch, gdrcopy$/);
    expect(err({ ...valid(), features: ['gds', 'gds'] })).toContain('/features: must NOT have duplicate items');
    expect(err({ ...valid(), features: [1] })).toContain('/features/0: must be string');
    expect(err({ ...valid(), features: 'gds' })).toContain('/features: must be array');
  });

  it('with graphics, no GPU may sit on the BMC display\'s bus', () => {
    const t = valid();
    t.gpus[1]!.pciBusId = BMC_NVML_BUS_ID;
    expect(validateTopology(t, 'x').gpus[1]!.pciBusId).toBe(BMC_NVML_BUS_ID); // fine without graphics
    expect(err({ ...t, features: ['graphics'] })).toBe(
      'topology file t.json: /gpus/1/pciBusId: 00000000:03:00.0 is the mock\'s BMC display (card0) when "graphics" is in features',
    );
  });

  it('generateTopology: no features = no field (byte-identical to before), else in canonical order', () => {
    expect('features' in generateTopology({ gpus: 2 })).toBe(false);
    expect(JSON.stringify(generateTopology({ gpus: 2, features: [] }))).toBe(JSON.stringify(generateTopology({ gpus: 2 })));
    const t = generateTopology({ features: ['nvswitch', 'graphics', 'nvswitch'] });
    expect(t.features).toEqual(['graphics', 'nvswitch']);
    expect(validateTopology(JSON.parse(JSON.stringify(t)), 'generated')).toEqual(t);
    const e = thrown(() => generateTopology({ features: ['opengl'] }));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain('"opengl": is not a feature');
    expect(e.fix).toContain('graphics');
  });

  it('parseFeatures, normalizeFeatures and withFeatures merge into canonical order and drop an empty list', () => {
    expect(parseFeatures(['gdrcopy', 'gds'], 'x')).toEqual(['gds', 'gdrcopy']);
    expect(normalizeFeatures(['mofed', 'graphics', 'mofed'])).toEqual(['graphics', 'mofed']);
    const base = generateTopology();
    expect(withFeatures(base, [])).toEqual(base);
    expect('features' in withFeatures({ ...base, features: [] }, [])).toBe(false);
    expect(withFeatures({ ...base, features: ['gdrcopy'] }, ['graphics', 'gdrcopy']).features).toEqual(['graphics', 'gdrcopy']);
  });

  it('drmNodesOf: card<i+1> and renderD<128+i> behind the BMC\'s card0, unique for 254 GPUs', () => {
    expect(drmNodesOf(0)).toEqual({ card: 'card1', cardMinor: 1, render: 'renderD128', renderMinor: 128 });
    expect(drmNodesOf(1)).toEqual({ card: 'card2', cardMinor: 2, render: 'renderD129', renderMinor: 129 });
    expect(drmNodesOf(62)).toMatchObject({ cardMinor: 63, renderMinor: 190 });
    // Past the kernel's legacy ranges both come from 192 up: GPU 63's card, then render and card per GPU.
    expect(drmNodesOf(63)).toEqual({ card: 'card192', cardMinor: 192, render: 'renderD191', renderMinor: 191 });
    expect(drmNodesOf(64)).toEqual({ card: 'card194', cardMinor: 194, render: 'renderD193', renderMinor: 193 });
    const minors = [0]; // the BMC's card0
    for (let i = 0; i < 254; i++) minors.push(drmNodesOf(i).cardMinor, drmNodesOf(i).renderMinor);
    expect(new Set(minors).size).toBe(minors.length);
    expect(() => drmNodesOf(-1)).toThrow(RangeError);
  });
});

describe('serializeTopologyText', () => {
  it('writes the native text format with NVML enums, hex PCI fields and bytes', () => {
    const t = generateTopology({ gpus: 2, mig: true });
    const lines = serializeTopologyText(t).split('\n');
    expect(lines[0]).toBe('driver\t550.54.15');
    expect(lines[1]).toBe('nvml\t12.550.54.15');
    expect(lines[2]).toBe('cuda\t12040');
    expect(lines[3]).toBe(
      ['gpu', '0', t.gpus[0]!.uuid, 'NVIDIA H100 80GB HBM3', '14', '00000000', '18', '00', '233010de', '9', '0', '9', String(81559 * 1048576), '1'].join('\t'),
    );
    expect(lines[4]).toBe(['mig', '0', '1', '0', t.gpus[0]!.migDevices[0]!.uuid, 'NVIDIA H100 80GB HBM3 MIG 3g.40gb', String(40192 * 1048576)].join('\t'));
    expect(lines[7]!.split('\t').slice(0, 2)).toEqual(['gpu', '1']);
    expect(lines[8]!.split('\t').slice(0, 2)).toEqual(['mig', '1']);
    expect(lines).toHaveLength(12); // 3 header + 2×(1+3) + trailing ''
    expect(lines[11]).toBe('');
  });

  it('maps Tesla/Turing and the mig ordinal follows file position, not the minor', () => {
    const t = generateTopology({ model: 'Tesla T4' });
    const gpu = serializeTopologyText(t).split('\n')[3]!.split('\t');
    expect(gpu[4]).toBe('2'); // NVML_BRAND_TESLA
    expect(gpu[11]).toBe('6'); // TURING
    expect(gpu[13]).toBe('0');
    const m = generateTopology({ gpus: 2, mig: true });
    m.gpus[0]!.minor = 7;
    expect(serializeTopologyText(m).split('\n')[4]!.split('\t')[1]).toBe('0');
  });

  it('ignores features (NVML does not know them)', () => {
    expect(serializeTopologyText(generateTopology({ features: [...MOCK_FEATURES] }))).toBe(serializeTopologyText(generateTopology()));
  });

  it('encodes CUDA versions like cudaDriverGetVersion', () => {
    expect(cudaVersionNumber('12.4')).toBe(12040);
    expect(cudaVersionNumber('11.8')).toBe(11080);
    expect(cudaVersionNumber('13.0')).toBe(13000);
  });
});
