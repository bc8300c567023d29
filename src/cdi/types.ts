/**
 * CDI spec documents (FACTS §3.1; field names are the Go tags of specs-go/config.go). A device's and a spec's
 * `containerEdits` are our ContainerEdits — the same JSON shape — plus the CDI field we read but do not apply
 * (netDevices: runc 1.1 cannot), so that valid specs from disk type-check as loaded.
 */
import type { ContainerEdits, IntelRdt } from '../edits/types.js';

export type CdiIntelRdt = IntelRdt;

export interface CdiNetDevice {
  hostInterfaceName: string;
  name: string;
}

export interface CdiContainerEdits extends ContainerEdits {
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
