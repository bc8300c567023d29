/**
 * The mock GPU host's topology: what `nvidia-ctk mock-driver --topology FILE` reads (JSON) and what the
 * fake libnvidia-ml answers from. Field names are the user-facing JSON schema (docs/mock-driver.md).
 */
export interface MockMigDevice {
  gpuInstanceId: number;
  computeInstanceId: number;
  uuid: string; // "MIG-<uuid>"
  profile: string; // "1g.10gb"
  memoryMiB: number;
}

export interface MockGpu {
  minor: number;
  uuid: string; // "GPU-<uuid>"
  name: string; // "NVIDIA H100 80GB HBM3"
  brand: string; // "Nvidia" | "Tesla" | "GeForce" | ... (seed names, FACTS §1.2)
  pciBusId: string; // "00000000:07:00.0"
  pciDeviceId: number; // 0x233010de
  computeCapability: string; // "9.0"
  architecture: string; // "Hopper" (Kepler..Rubin, FACTS §2)
  memoryMiB: number;
  migEnabled: boolean;
  migDevices: MockMigDevice[];
  /** nvmlDeviceGetPersistenceMode's answer; absent = the fake NVML answers NOT_SUPPORTED (as before this field). */
  persistenceMode?: boolean;
}

/** Optional parts of the driver installation (docs/mock-driver.md, "Features"); MOCK_FEATURES lists them in order. */
export type MockFeature = 'graphics' | 'gds' | 'mofed' | 'nvswitch' | 'gdrcopy';

export interface MockTopology {
  driverVersion: string; // "550.54.15"
  cudaVersion: string; // "12.4"
  gpus: MockGpu[];
  /** Absent = none; never written empty, so topologies without features stay as they always were. */
  features?: MockFeature[];
}
