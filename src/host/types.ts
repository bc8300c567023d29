/** What the host has, as the rest of the program sees it. Produced by src/host/nvml.ts from the addon. */

export interface MigDeviceInfo {
  /** Position of the MIG device on its parent (nvmlDeviceGetMigDeviceHandleByIndex). */
  index: number;
  gpuInstanceId: number;
  computeInstanceId: number;
  uuid: string; // "MIG-…"
  name: string; // e.g. "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
  memoryTotalBytes?: number;
}

export interface GpuInfo {
  index: number;
  minor: number;
  uuid: string; // "GPU-…"
  name: string;
  brand: string; // seed's brand names: "Nvidia", "Tesla", "GeForce", ... (FACTS §1.2)
  pciBusId: string; // "00000000:07:00.0", lowercase hex as the seed prints it
  computeCapability?: string; // "9.0"
  architecture?: string; // "Hopper"
  memoryTotalBytes?: number;
  migEnabled?: boolean; // absent when NVML cannot tell (optional symbol missing)
  migDevices: MigDeviceInfo[];
}

export interface DriverInfo {
  nvmlVersion?: string; // "12.550.54.15"
  driverVersion: string; // "550.54.15"
  cudaVersion?: string; // "12.4"
  gpus: GpuInfo[];
}
