/**
 * Mock host topologies: generated from flags (`--gpus/--model/--mig`), or read from a user's JSON file and
 * validated, and serialised to the TAB-separated text format the fake NVML parses (native/README.md).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { NvrError } from '../errors.js';
import { BMC_NVML_BUS_ID, MOCK_FEATURES, normalizeFeatures } from './features.js';
import { findModel, DEFAULT_MODEL_NAME, type GpuModel } from './models.js';
import type { MockFeature, MockGpu, MockMigDevice, MockTopology } from './topology-types.js';

// GPU minors share major 195 with nvidia-modeset (254) and nvidiactl (255), so 0..253 are free: 254 GPUs.
export const MAX_MINOR = 253;
export const MAX_GPUS = MAX_MINOR + 1;
export const DEFAULT_DRIVER_VERSION = '550.54.15';
export const DEFAULT_CUDA_VERSION = '12.4';

const DRIVER_VERSION_RE = /^\d+\.\d+(\.\d+)?$/;
const CUDA_VERSION_RE = /^\d+\.\d+$/;
const UUID_BODY = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// Printable, no TAB/CR/LF (they would break the text format); 63 chars fit NVML's v1 64-byte name buffer.
const NAME_PATTERN = '^[^\\t\\r\\n\\x00]{1,63}$';

/** NVML enum values (FACTS §2) for the seed's brand names (FACTS §1.2). */
export const BRAND_ENUM: Readonly<Record<string, number>> = Object.freeze({
  Unknown: 0, Quadro: 1, Tesla: 2, NVS: 3, GRID: 4, GeForce: 5, TITAN: 6, VApps: 7, VPC: 8, VCS: 9, VWS: 10,
  CloudGaming: 11, QuadroRTX: 12, NvidiaRTX: 13, Nvidia: 14, GeForceRTX: 15, TitanRTX: 16,
});

/** nvmlDeviceArchitecture_t values (FACTS §2). */
export const ARCHITECTURE_ENUM: Readonly<Record<string, number>> = Object.freeze({
  Kepler: 2, Maxwell: 3, Pascal: 4, Volta: 5, Turing: 6, Ampere: 7, Ada: 8, Hopper: 9, Blackwell: 10, Rubin: 13,
});

/** The user-facing JSON schema of `--topology FILE` (draft-07); docs/mock-driver.md shows it. */
export const TOPOLOGY_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'nvidia-ctk mock-driver topology',
  type: 'object',
  additionalProperties: false,
  required: ['driverVersion', 'cudaVersion', 'gpus'],
  properties: {
    driverVersion: { type: 'string', pattern: DRIVER_VERSION_RE.source },
    cudaVersion: { type: 'string', pattern: CUDA_VERSION_RE.source },
    gpus: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_GPUS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: [
          'minor', 'uuid', 'name', 'brand', 'pciBusId', 'pciDeviceId', 'computeCapability', 'architecture',
          'memoryMiB', 'migEnabled', 'migDevices',
        ],
        properties: {
          minor: { type: 'integer', minimum: 0, maximum: MAX_MINOR },
          uuid: { type: 'string', pattern: `^GPU-${UUID_BODY}$` },
          name: { type: 'string', pattern: NAME_PATTERN },
          brand: { type: 'string', enum: Object.keys(BRAND_ENUM) },
          // NVML busId form; device 00..1f, function 0 (the text format has no function field).
          pciBusId: { type: 'string', pattern: '^[0-9a-f]{8}:[0-9a-f]{2}:[01][0-9a-f]\\.0$' },
          pciDeviceId: { type: 'integer', minimum: 0, maximum: 0xffffffff },
          computeCapability: { type: 'string', pattern: '^\\d{1,2}\\.\\d$' },
          architecture: { type: 'string', enum: Object.keys(ARCHITECTURE_ENUM) },
          memoryMiB: { type: 'integer', minimum: 1, maximum: 16777216 },
          migEnabled: { type: 'boolean' },
          // Optional: topologies written before it stay valid (and their NVML does not report it).
          persistenceMode: { type: 'boolean' },
          migDevices: {
            type: 'array',
            maxItems: 8, // NVML's MAX_MIG_DEVICES per GPU
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['gpuInstanceId', 'computeInstanceId', 'uuid', 'profile', 'memoryMiB'],
              properties: {
                // Bounds of /proc/driver/nvidia-caps/mig-minors (gi0..gi14, ci0..ci7).
                gpuInstanceId: { type: 'integer', minimum: 0, maximum: 14 },
                computeInstanceId: { type: 'integer', minimum: 0, maximum: 7 },
                uuid: { type: 'string', pattern: `^MIG-${UUID_BODY}$` },
                profile: { type: 'string', pattern: '^\\d+g\\.\\d+gb$' },
                memoryMiB: { type: 'integer', minimum: 1, maximum: 16777216 },
              },
            },
          },
        },
      },
    },
    // Optional, unlike every other field: files written before features existed stay valid.
    features: { type: 'array', uniqueItems: true, items: { type: 'string', enum: MOCK_FEATURES } },
  },
} as const;

const validateSchema = new Ajv({ allErrors: false, strict: true }).compile<MockTopology>(TOPOLOGY_SCHEMA);

export interface GenerateOptions {
  gpus?: number;
  model?: string;
  driverVersion?: string;
  cudaVersion?: string;
  mig?: boolean;
  /** Optional parts of the installation (graphics, gds, mofed, nvswitch, gdrcopy); none by default. */
  features?: Iterable<string>;
}

/** Checked feature names in MOCK_FEATURES order; `where` names the source in the error. */
export function parseFeatures(names: Iterable<string>, where: string): MockFeature[] {
  const out: MockFeature[] = [];
  for (const name of names) {
    if (!(MOCK_FEATURES as readonly string[]).includes(name)) {
      throw inputError(where, name, `is not a feature (one of ${MOCK_FEATURES.join(', ')})`, `use any of ${MOCK_FEATURES.join(', ')}`);
    }
    out.push(name as MockFeature);
  }
  return normalizeFeatures(out);
}

/** `t` with `extra` features added (deduplicated, in MOCK_FEATURES order); the field stays absent when empty. */
export function withFeatures(t: MockTopology, extra: Iterable<MockFeature>): MockTopology {
  const { features: current, ...rest } = t;
  const features = normalizeFeatures([...(current ?? []), ...extra]);
  return features.length > 0 ? { ...rest, features } : rest;
}

/** 32 hex digits derived from `seed`, formatted as a UUID body: reproducible across runs. */
function hashUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

// Bus numbers of an 8-GPU HGX board; GPUs beyond 8 go to further device slots (0..31) on the same buses,
// which keeps every id unique up to 8 × 32 = 256 GPUs (more than MAX_GPUS).
const BUSES = [0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb];
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

function busIdFor(index: number): string {
  return `00000000:${hex2(BUSES[index % BUSES.length]!)}:${hex2(Math.floor(index / BUSES.length))}.0`;
}

// With --mig each capable GPU gets three instances, one per slice size, as an operator typically carves it.
const MIG_LAYOUT: ReadonlyArray<{ gi: number; ci: number; slices: string }> = [
  { gi: 1, ci: 0, slices: '3g.' },
  { gi: 2, ci: 0, slices: '2g.' },
  { gi: 3, ci: 0, slices: '1g.' },
];

function migDevicesFor(model: GpuModel, gpuUuid: string): MockMigDevice[] {
  return MIG_LAYOUT.map(({ gi, ci, slices }) => {
    const profile = model.migProfiles.find((p) => p.name.startsWith(slices))!;
    return {
      gpuInstanceId: gi,
      computeInstanceId: ci,
      uuid: `MIG-${hashUuid(`${gpuUuid}/${gi}/${ci}`)}`,
      profile: profile.name,
      memoryMiB: profile.memoryMiB,
    };
  });
}

function inputError(flag: string, value: unknown, problem: string, fix: string): NvrError {
  return new NvrError('INPUT', `mock-driver ${flag} ${JSON.stringify(value)}: ${problem}`, { fix });
}

/** A homogeneous host of `gpus` boards of one model. Deterministic: same options, same topology. */
export function generateTopology(options: GenerateOptions = {}): MockTopology {
  const gpus = options.gpus ?? 1;
  const modelName = options.model ?? DEFAULT_MODEL_NAME;
  const driverVersion = options.driverVersion ?? DEFAULT_DRIVER_VERSION;
  const cudaVersion = options.cudaVersion ?? DEFAULT_CUDA_VERSION;

  if (!Number.isInteger(gpus) || gpus < 1 || gpus > MAX_GPUS) {
    throw inputError('--gpus', gpus, `must be an integer from 1 to ${MAX_GPUS}`, 'pass e.g. --gpus 8');
  }
  if (!DRIVER_VERSION_RE.test(driverVersion)) {
    throw inputError('--driver-version', driverVersion, 'is not a driver version', 'pass e.g. --driver-version 550.54.15');
  }
  if (!CUDA_VERSION_RE.test(cudaVersion)) {
    throw inputError('--cuda-version', cudaVersion, 'is not MAJOR.MINOR', 'pass e.g. --cuda-version 12.4');
  }
  if (!new RegExp(NAME_PATTERN).test(modelName.trim())) {
    throw inputError('--model', modelName, 'must be 1 to 63 characters without tabs or newlines', 'pass e.g. --model "NVIDIA H100 80GB HBM3"');
  }
  const model = findModel(modelName);
  const mig = options.mig ?? false;
  if (mig && model.migProfiles.length === 0) {
    throw inputError('--mig', model.name, 'this model does not support MIG', 'drop --mig or choose a MIG-capable model such as "NVIDIA H100 80GB HBM3"');
  }

  const list: MockGpu[] = [];
  for (let i = 0; i < gpus; i++) {
    const uuid = `GPU-${hashUuid(`nvmock:${model.name}:${i}`)}`;
    list.push({
      minor: i,
      uuid,
      name: model.name,
      brand: model.brand,
      pciBusId: busIdFor(i),
      pciDeviceId: model.pciDeviceId,
      computeCapability: model.computeCapability,
      architecture: model.architecture,
      memoryMiB: model.memoryMiB,
      migEnabled: mig,
      migDevices: mig ? migDevicesFor(model, uuid) : [],
    });
  }
  return withFeatures({ driverVersion, cudaVersion, gpus: list }, parseFeatures(options.features ?? [], 'feature'));
}

function describeAjvError(e: ErrorObject): string {
  const at = e.instancePath === '' ? '(top level)' : e.instancePath;
  if (e.keyword === 'additionalProperties') return `${at}: unknown field "${String(e.params.additionalProperty)}"`;
  if (e.keyword === 'required') return `${at}: missing field "${String(e.params.missingProperty)}"`;
  if (e.keyword === 'enum') return `${at}: must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
  return `${at}: ${e.message ?? 'is invalid'}`;
}

/** Constraints JSON schema cannot express: uniqueness across GPUs and MIG devices. Returns the first problem. */
function crossCheck(t: MockTopology): string | undefined {
  const minors = new Map<number, number>();
  const uuids = new Map<string, string>();
  const busIds = new Map<string, number>();
  const seenUuid = (uuid: string, where: string): string | undefined => {
    const prev = uuids.get(uuid.toLowerCase());
    if (prev !== undefined) return `${where}/uuid: duplicate UUID ${uuid} (also at ${prev})`;
    uuids.set(uuid.toLowerCase(), where);
    return undefined;
  };
  const graphics = t.features?.includes('graphics') ?? false;
  for (const [i, gpu] of t.gpus.entries()) {
    const at = `/gpus/${i}`;
    if (graphics && gpu.pciBusId === BMC_NVML_BUS_ID) {
      return `${at}/pciBusId: ${gpu.pciBusId} is the mock's BMC display (card0) when "graphics" is in features`;
    }
    if (minors.has(gpu.minor)) return `${at}/minor: duplicate minor ${gpu.minor} (also /gpus/${minors.get(gpu.minor)})`;
    minors.set(gpu.minor, i);
    if (busIds.has(gpu.pciBusId)) return `${at}/pciBusId: duplicate bus id ${gpu.pciBusId} (also /gpus/${busIds.get(gpu.pciBusId)})`;
    busIds.set(gpu.pciBusId, i);
    const dup = seenUuid(gpu.uuid, at);
    if (dup) return dup;
    if (!gpu.migEnabled && gpu.migDevices.length > 0) return `${at}/migDevices: MIG devices listed but migEnabled is false`;
    const instances = new Set<string>();
    for (const [j, m] of gpu.migDevices.entries()) {
      const mat = `${at}/migDevices/${j}`;
      const key = `${m.gpuInstanceId}/${m.computeInstanceId}`;
      if (instances.has(key)) return `${mat}: duplicate GPU instance ${m.gpuInstanceId} compute instance ${m.computeInstanceId}`;
      instances.add(key);
      const d = seenUuid(m.uuid, mat);
      if (d) return d;
    }
  }
  return undefined;
}

const TOPOLOGY_FIX = 'fix the file (schema: docs/mock-driver.md) or generate one with --gpus/--model/--mig';

/** Validates an already-parsed value; `source` names it in errors ("topology file /x.json"). */
export function validateTopology(value: unknown, source: string): MockTopology {
  if (!validateSchema(value)) {
    const first = validateSchema.errors?.[0];
    throw new NvrError('TOPOLOGY', `${source}: ${first ? describeAjvError(first) : 'is invalid'}`, { fix: TOPOLOGY_FIX });
  }
  const problem = crossCheck(value);
  if (problem) throw new NvrError('TOPOLOGY', `${source}: ${problem}`, { fix: TOPOLOGY_FIX });
  return value;
}

/** Parses and validates topology JSON text. */
export function parseTopologyJson(text: string, source: string): MockTopology {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new NvrError('TOPOLOGY', `${source}: invalid JSON: ${(e as Error).message}`, { fix: TOPOLOGY_FIX, cause: e });
  }
  return validateTopology(value, source);
}

/** Reads `--topology FILE`. */
export function readTopologyFile(path: string): MockTopology {
  const source = `topology file ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new NvrError('TOPOLOGY', `${source}: cannot read: ${(e as Error).message}`, {
      fix: 'pass an existing, readable JSON file to --topology',
      cause: e,
    });
  }
  return parseTopologyJson(text, source);
}

/** The name NVML reports for a MIG device. */
export function migDeviceName(gpu: MockGpu, mig: MockMigDevice): string {
  return `${gpu.name} MIG ${mig.profile}`;
}

/** "12.4" → 12040 (CUDA_VERSION encoding: major*1000 + minor*10). */
export function cudaVersionNumber(cuda: string): number {
  const [major, minor] = cuda.split('.').map(Number);
  return major! * 1000 + minor! * 10;
}

const MIB = 1024 * 1024;

/**
 * The fake NVML's text format (native/README.md): TAB-separated records, hex fields without 0x, memory in
 * bytes, brand/architecture as NVML enum numbers, `mig` records naming their GPU by position in the file.
 */
export function serializeTopologyText(t: MockTopology): string {
  const cudaMajor = t.cudaVersion.split('.')[0]!;
  const lines: string[] = [
    `driver\t${t.driverVersion}`,
    `nvml\t${cudaMajor}.${t.driverVersion}`,
    `cuda\t${cudaVersionNumber(t.cudaVersion)}`,
  ];
  t.gpus.forEach((gpu, ordinal) => {
    const [domain, bus, devFn] = gpu.pciBusId.split(':') as [string, string, string];
    const device = devFn.split('.')[0]!;
    const [ccMajor, ccMinor] = gpu.computeCapability.split('.');
    lines.push(
      [
        'gpu', gpu.minor, gpu.uuid, gpu.name, BRAND_ENUM[gpu.brand] ?? 0, domain, bus, device,
        (gpu.pciDeviceId >>> 0).toString(16).padStart(8, '0'), ccMajor, ccMinor,
        ARCHITECTURE_ENUM[gpu.architecture] ?? 0xffffffff, gpu.memoryMiB * MIB, gpu.migEnabled ? 1 : 0,
      ].join('\t'),
    );
    for (const m of gpu.migDevices) {
      lines.push(
        ['mig', ordinal, m.gpuInstanceId, m.computeInstanceId, m.uuid, migDeviceName(gpu, m), m.memoryMiB * MIB].join('\t'),
      );
    }
    // Only when the topology says: without it the fake answers NOT_SUPPORTED, as it always did.
    if (gpu.persistenceMode !== undefined) lines.push(['persistence', ordinal, gpu.persistenceMode ? 1 : 0].join('\t'));
  });
  return lines.join('\n') + '\n';
}
