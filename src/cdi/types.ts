/**
 * CDI spec documents (FACTS §3.1; field names are the Go tags of specs-go/config.go). A device's and a spec's
 * `containerEdits` are our ContainerEdits — the same JSON shape — plus the two CDI fields we read but do not
 * apply (intelRdt, netDevices), so that valid specs from disk type-check as loaded.
 */
import type { ContainerEdits } from '../edits/types.js';

export interface CdiIntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  schemata?: string[];
  enableMonitoring?: boolean;
  /** Pre-1.1.0 fields. */
  enableCMT?: boolean;
  enableMBM?: boolean;
}

export interface CdiNetDevice {
  hostInterfaceName: string;
  name: string;
}

export interface CdiContainerEdits extends ContainerEdits {
  intelRdt?: CdiIntelRdt;
  netDevices?: CdiNetDevice[];
}

export interface CdiDevice {
  /** Device name (the part after `=`): `0`, `GPU-…`, `all`. */
  name: string;
  annotations?: Record<string, string>;
  containerEdits: CdiContainerEdits;
}

export interface CdiSpec {
  cdiVersion: string;
  /** `vendor/class`, e.g. `nvidia.com/gpu`. */
  kind: string;
  annotations?: Record<string, string>;
  devices: CdiDevice[];
  /** Edits applied once for every container that gets at least one device of this spec. */
  containerEdits?: CdiContainerEdits;
}
