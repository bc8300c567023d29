import type { DriverInfo } from '../host/types.js';

/** `nvidia-container-cli info` output in the seed's format (FACTS.md §1.2): `%-15s %s` lines, a blank line
 *  before each device. MIG devices follow their parent as indented blocks (our addition; the seed omits them). */
const line = (label: string, value: string | number): string => `${label.padEnd(15)} ${value}`;

export function formatInfo(driver: DriverInfo): string {
  const out = [line('NVRM version:', driver.driverVersion), line('CUDA version:', driver.cudaVersion ?? 'N/A')];
  for (const gpu of driver.gpus) {
    out.push(
      '',
      line('Device Index:', gpu.index),
      line('Device Minor:', gpu.minor),
      line('Model:', gpu.name),
      line('Brand:', gpu.brand),
      line('GPU UUID:', gpu.uuid),
      line('Bus Location:', gpu.pciBusId),
      line('Architecture:', gpu.computeCapability ?? 'N/A'),
    );
    for (const mig of gpu.migDevices) {
      out.push(
        '',
        `  ${line('MIG Device:', `${gpu.index}:${mig.index}`)}`,
        `  ${line('MIG UUID:', mig.uuid)}`,
        `  ${line('Model:', mig.name)}`,
        `  ${line('GPU Instance:', mig.gpuInstanceId)}`,
        `  ${line('Compute Inst.:', mig.computeInstanceId)}`,
      );
    }
  }
  return out.join('\n') + '\n';
}

/** `info --csv`, as the seed prints it. */
export function formatInfoCsv(driver: DriverInfo): string {
  const rows = [
    'NVRM version,CUDA version',
    `${driver.driverVersion},${driver.cudaVersion ?? 'N/A'}`,
    '',
    'Device Index,Device Minor,Model,Brand,GPU UUID,Bus Location,Architecture',
    ...driver.gpus.map((g) =>
      [g.index, g.minor, g.name, g.brand, g.uuid, g.pciBusId, g.computeCapability ?? 'N/A'].join(','),
    ),
  ];
  return rows.join('\n') + '\n';
}

/** What `info --json` prints (docs/doctor.md, "JSON of the report commands"): the text's data, every key always
 *  present (null where the text says N/A), so scripts need no existence checks. */
export interface InfoJson {
  driverVersion: string;
  cudaVersion: string | null;
  nvmlVersion: string | null;
  gpus: Array<{
    index: number;
    minor: number;
    name: string;
    brand: string;
    uuid: string;
    pciBusId: string;
    computeCapability: string | null;
    architecture: string | null;
    memoryTotalBytes: number | null;
    migEnabled: boolean | null;
    migDevices: Array<{ index: number; gpuInstanceId: number; computeInstanceId: number; uuid: string; name: string; memoryTotalBytes: number | null }>;
  }>;
}

export function infoJson(driver: DriverInfo): InfoJson {
  return {
    driverVersion: driver.driverVersion,
    cudaVersion: driver.cudaVersion ?? null,
    nvmlVersion: driver.nvmlVersion ?? null,
    gpus: driver.gpus.map((g) => ({
      index: g.index,
      minor: g.minor,
      name: g.name,
      brand: g.brand,
      uuid: g.uuid,
      pciBusId: g.pciBusId,
      computeCapability: g.computeCapability ?? null,
      architecture: g.architecture ?? null,
      memoryTotalBytes: g.memoryTotalBytes ?? null,
      migEnabled: g.migEnabled ?? null,
      migDevices: g.migDevices.map((m) => ({
        index: m.index, gpuInstanceId: m.gpuInstanceId, computeInstanceId: m.computeInstanceId, uuid: m.uuid, name: m.name, memoryTotalBytes: m.memoryTotalBytes ?? null,
      })),
    })),
  };
}

/** `info --json`. */
export function formatInfoJson(driver: DriverInfo): string {
  return JSON.stringify(infoJson(driver), null, 2) + '\n';
}
