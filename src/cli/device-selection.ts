/**
 * `--device` of `nvidia-container-cli list`: the same grammar as NVIDIA_VISIBLE_DEVICES, resolved against the
 * host. A MIG device brings its parent GPU's node as well as its own capabilities, as in the seed.
 */
import { NvrError } from '../errors.js';
import type { DeviceSelection } from '../host/inventory.js';
import type { DriverInfo } from '../host/types.js';
import { parseDeviceList } from '../request/devices.js';
import { resolveDevices, selectedGpus } from '../request/resolve.js';
import { DEFAULT_CAPABILITIES } from '../request/capabilities.js';

export function selectDevices(ids: string[], driver: DriverInfo): DeviceSelection {
  const parsed = parseDeviceList(ids, '--device');
  if (!parsed.gpu) return { gpus: [] };
  const resolved = resolveDevices(
    { gpu: true, devices: parsed.devices, capabilities: [...DEFAULT_CAPABILITIES], requirements: [], source: 'env', reasons: [] },
    driver,
  );
  if (resolved.cdi.length > 0) {
    throw new NvrError('DEVICE', `--device: CDI names (${resolved.cdi.join(', ')}) are not host devices`, {
      fix: 'use indices, UUIDs or MIG devices (0:1); list CDI devices with nvidia-ctk cdi list',
    });
  }
  return { gpus: selectedGpus(resolved), migDevices: resolved.migDevices };
}
