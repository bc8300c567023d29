/**
 * The device-selection grammar of NVIDIA_VISIBLE_DEVICES and of volume-mount device requests
 * (FACTS §1.9, PEER §3.8). Syntax only: whether a device exists is decided in resolve.ts.
 */
import { NvrError } from '../errors.js';
import type { DeviceSelector } from './types.js';

/** The result of reading a device list: not a GPU container, or a GPU container with these devices. */
export type VisibleDevices = { gpu: false } | { gpu: true; devices: DeviceSelector[] };

const HEX_UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const GPU_UUID = new RegExp(`^GPU-${HEX_UUID}$`, 'i');
const MIG_UUID = new RegExp(`^MIG-${HEX_UUID}$`, 'i');
// Pre-R470 drivers named MIG devices after their parent: MIG-GPU-<uuid>/<gi>/<ci>.
const LEGACY_MIG_UUID = new RegExp(`^MIG-GPU-(${HEX_UUID})/(\\d{1,9})/(\\d{1,9})$`, 'i');
// domain:bus:device.function, each in hex (the form nvidia-smi and NVML print).
const PCI_BUS_ID = /^([0-9a-f]{1,8}):([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;
const INDEX = /^\d{1,9}$/;
const MIG_INDEX = /^(\d{1,9}):(\d{1,9})$/;
// FACTS §3.2: vendor/class start with a letter and end with a letter or digit; names start and end alphanumeric.
const CDI_QUALIFIER = '[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?';
const CDI_NAME = new RegExp(`^(${CDI_QUALIFIER})/(${CDI_QUALIFIER})=([A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?)$`);

/** Quote untrusted text for a message: escaped, and cut so a hostile value cannot flood the log. */
export function quote(text: string, max = 120): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** Normalise a PCI bus id to NVML's `%08x:%02x:%02x.%x` lowercase form; undefined when it is not one. */
export function normalizePciBusId(text: string): string | undefined {
  const m = PCI_BUS_ID.exec(text.trim());
  if (!m) return undefined;
  const [, domain, bus, device, fn] = m;
  if (parseInt(device!, 16) > 0x1f) return undefined; // 5-bit device number
  return `${domain!.padStart(8, '0')}:${bus!.padStart(2, '0')}:${device!.padStart(2, '0')}.${fn}`.toLowerCase();
}

/** True for a fully-qualified CDI device name `vendor/class=name` (FACTS §3.2). */
export function isCdiName(text: string): boolean {
  const m = CDI_NAME.exec(text);
  return m !== null && m[1]!.length <= 253 && m[2]!.length <= 63;
}

/**
 * Parse one device item (already trimmed, not `none`/`void`). `source` names where it came from, for the
 * error message (e.g. `NVIDIA_VISIBLE_DEVICES`).
 */
export function parseDeviceItem(item: string, source = 'NVIDIA_VISIBLE_DEVICES'): DeviceSelector {
  if (item.toLowerCase() === 'all') return { kind: 'all' };
  if (GPU_UUID.test(item)) return { kind: 'uuid', uuid: `GPU-${item.slice(4).toLowerCase()}` };
  if (MIG_UUID.test(item)) return { kind: 'mig-uuid', uuid: `MIG-${item.slice(4).toLowerCase()}` };
  const legacy = LEGACY_MIG_UUID.exec(item);
  if (legacy) {
    return { kind: 'mig-uuid', uuid: `MIG-GPU-${legacy[1]!.toLowerCase()}/${Number(legacy[2])}/${Number(legacy[3])}` };
  }
  const busId = normalizePciBusId(item);
  if (busId !== undefined) return { kind: 'pci', busId };
  if (INDEX.test(item)) return { kind: 'index', index: Number(item) };
  const mig = MIG_INDEX.exec(item);
  if (mig) return { kind: 'mig-index', gpu: Number(mig[1]), mig: Number(mig[2]) };
  if (isCdiName(item)) return { kind: 'cdi', name: item };
  throw new NvrError(
    'DEVICE',
    `${source}: ${quote(item)} is not a device index, UUID, PCI bus id, MIG device or CDI name`,
    {
      fix:
        'use all, none, a GPU index (0), a GPU UUID (GPU-…), a PCI bus id (00000000:07:00.0), ' +
        'a MIG device (0:1 or MIG-…) or a CDI name (nvidia.com/gpu=0), separated by commas',
    },
  );
}

/** The canonical text of a selector: what the user would write, and the key used to collapse duplicates. */
export function formatSelector(s: DeviceSelector): string {
  switch (s.kind) {
    case 'all':
      return 'all';
    case 'index':
      return String(s.index);
    case 'uuid':
    case 'mig-uuid':
      return s.uuid;
    case 'pci':
      return s.busId;
    case 'mig-index':
      return `${s.gpu}:${s.mig}`;
    case 'cdi':
      return s.name;
  }
}

/**
 * Read a list of device items (from the env var split on commas, or from volume mounts).
 * Any `void` → not a GPU container. `all` absorbs everything else. `none` contributes nothing, so `none`
 * alone is a GPU container with no devices (driver files only). Empty items are skipped and duplicates
 * (by normalised form) collapsed; no items at all → not a GPU container.
 */
export function parseDeviceList(items: readonly string[], source = 'NVIDIA_VISIBLE_DEVICES'): VisibleDevices {
  const trimmed = items.map((i) => i.trim()).filter((i) => i !== '');
  if (trimmed.length === 0 || trimmed.some((i) => i.toLowerCase() === 'void')) return { gpu: false };
  const devices = new Map<string, DeviceSelector>();
  for (const item of trimmed) {
    if (item.toLowerCase() === 'none') continue;
    const selector = parseDeviceItem(item, source);
    devices.set(formatSelector(selector), selector);
  }
  if (devices.has('all')) return { gpu: true, devices: [{ kind: 'all' }] };
  return { gpu: true, devices: [...devices.values()] };
}

/** NVIDIA_VISIBLE_DEVICES: unset or empty → not a GPU container; otherwise a comma list (parseDeviceList). */
export function parseVisibleDevices(value: string | undefined, source = 'NVIDIA_VISIBLE_DEVICES'): VisibleDevices {
  if (value === undefined) return { gpu: false };
  return parseDeviceList(value.split(','), source);
}
