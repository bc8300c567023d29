/**
 * The GPU models `nvidia-ctk mock-driver --model` knows. Values are what real NVML reports for these boards
 * (name, brand, CUDA compute capability, architecture, framebuffer MiB, PCI device id); MIG profiles are the
 * GPU-instance profiles of the board, smallest first, with their memory in MiB.
 */
export interface MigProfile {
  name: string; // "1g.10gb"
  memoryMiB: number;
}

export interface GpuModel {
  name: string;
  brand: string; // seed brand names (FACTS §1.2): "Nvidia", "Tesla", ...
  computeCapability: string;
  architecture: string; // FACTS §2 names: "Hopper", "Ampere", ...
  memoryMiB: number;
  pciDeviceId: number; // device id << 16 | 0x10de
  migProfiles: readonly MigProfile[]; // empty: the board cannot do MIG
}

const profiles = (list: Array<[string, number]>): MigProfile[] =>
  list.map(([name, memoryMiB]) => ({ name, memoryMiB }));

export const GPU_MODELS: readonly GpuModel[] = Object.freeze([
  {
    name: 'NVIDIA H100 80GB HBM3',
    brand: 'Nvidia',
    computeCapability: '9.0',
    architecture: 'Hopper',
    memoryMiB: 81559,
    pciDeviceId: 0x233010de,
    migProfiles: profiles([['1g.10gb', 9856], ['2g.20gb', 19968], ['3g.40gb', 40192], ['7g.80gb', 80384]]),
  },
  {
    name: 'NVIDIA A100-SXM4-40GB',
    brand: 'Nvidia',
    computeCapability: '8.0',
    architecture: 'Ampere',
    memoryMiB: 40960,
    pciDeviceId: 0x20b010de,
    migProfiles: profiles([['1g.5gb', 4864], ['2g.10gb', 9856], ['3g.20gb', 19968], ['7g.40gb', 40192]]),
  },
  {
    name: 'NVIDIA A100-SXM4-80GB',
    brand: 'Nvidia',
    computeCapability: '8.0',
    architecture: 'Ampere',
    memoryMiB: 81920,
    pciDeviceId: 0x20b210de,
    migProfiles: profiles([['1g.10gb', 9856], ['2g.20gb', 19968], ['3g.40gb', 40192], ['7g.80gb', 80384]]),
  },
  {
    name: 'NVIDIA H200',
    brand: 'Nvidia',
    computeCapability: '9.0',
    architecture: 'Hopper',
    memoryMiB: 143771,
    pciDeviceId: 0x233510de,
    migProfiles: profiles([['1g.18gb', 16384], ['2g.35gb', 32768], ['3g.71gb', 65536], ['7g.141gb', 143360]]),
  },
  {
    name: 'NVIDIA B200',
    brand: 'Nvidia',
    computeCapability: '10.0',
    architecture: 'Blackwell',
    memoryMiB: 183359,
    pciDeviceId: 0x290110de,
    migProfiles: profiles([['1g.23gb', 23040], ['2g.45gb', 45824], ['3g.90gb', 91648], ['7g.180gb', 183296]]),
  },
  {
    name: 'NVIDIA L4',
    brand: 'Nvidia',
    computeCapability: '8.9',
    architecture: 'Ada',
    memoryMiB: 23034,
    pciDeviceId: 0x27b810de,
    migProfiles: [],
  },
  {
    name: 'Tesla T4',
    brand: 'Tesla',
    computeCapability: '7.5',
    architecture: 'Turing',
    memoryMiB: 15360,
    pciDeviceId: 0x1eb810de,
    migProfiles: [],
  },
] satisfies GpuModel[]);

export const DEFAULT_MODEL_NAME = 'NVIDIA H100 80GB HBM3';

/**
 * The model called `name` (case-insensitive). An unknown name is still a valid mock board: it gets the
 * Hopper 9.0 defaults of the H100 under the name the user chose, so tests can invent model names.
 */
export function findModel(name: string): GpuModel {
  const wanted = name.trim().toLowerCase();
  const known = GPU_MODELS.find((m) => m.name.toLowerCase() === wanted);
  if (known) return known;
  const generic = GPU_MODELS.find((m) => m.name === DEFAULT_MODEL_NAME)!;
  return { ...generic, name: name.trim() };
}
