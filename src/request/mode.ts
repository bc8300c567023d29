/**
 * `[nvidia-container-runtime] mode` (PEER §3.9): which path injects a GPU container's devices.
 *   - `cdi`: always from CDI specs; unqualified NVIDIA_VISIBLE_DEVICES entries get `default-kind`
 *     (`0` → `nvidia.com/gpu=0`, `all` → `nvidia.com/gpu=all`, `none` → `nvidia.com/gpu=none` as the peer's HEAD).
 *   - `auto` (default): from CDI specs when every requested device is a fully-qualified name (annotations only
 *     carry such names); otherwise the direct path (NVML + driver root), the legacy equivalent.
 *   - `legacy`: the direct path; a CDI name is then an error (annotations are not read at all).
 *   CDI names mixed with plain ids in auto mode are an error too: the direct path cannot inject a CDI device.
 *   - `csv` (Tegra) is not implemented.
 * Pure: the caller (parseRequest) hands in what was requested.
 */
import type { RuntimeMode } from '../config/schema.js';
import { NvrError } from '../errors.js';
import { formatSelector, isCdiName, quote } from './devices.js';
import type { DeviceRequest, DeviceSelector } from './types.js';

export type Injection = { path: 'direct' } | { path: 'cdi'; names: string[]; reason: string };

const FIX_MODE = 'set mode = "auto" or "cdi" under [nvidia-container-runtime] in config.toml';

/** The fully-qualified CDI name of a selector: kept when already qualified, else `<kind>=<canonical text>`. */
export function cdiNameOf(selector: DeviceSelector, defaultKind: string): string {
  return selector.kind === 'cdi' ? selector.name : `${defaultKind}=${formatSelector(selector)}`;
}

function checkKind(defaultKind: string): void {
  if (!isCdiName(`${defaultKind}=0`)) {
    throw new NvrError('CONFIG', `[nvidia-container-runtime.modes.cdi] default-kind ${quote(defaultKind)} is not a CDI kind (vendor/class)`, {
      fix: 'set default-kind = "nvidia.com/gpu"',
    });
  }
}

/**
 * Why a request cannot take the direct path: it names CDI devices (`cdi`) that only the CDI path can inject,
 * in legacy mode, or mixed with plain ids (`plain`) in auto mode. The caller throws it before touching the host.
 */
export function cdiOnDirectPathError(mode: RuntimeMode, cdi: readonly string[], plain: readonly string[]): NvrError {
  if (mode === 'legacy') {
    return new NvrError('DEVICE', `CDI device names (${cdi.map((n) => quote(n)).join(', ')}) cannot be used in mode = "legacy"`, { fix: FIX_MODE });
  }
  return new NvrError('DEVICE', `CDI device names (${cdi.join(', ')}) mixed with other device ids (${plain.join(', ')}) in mode = "${mode}"`, {
    fix: 'request every device by CDI name (nvidia.com/gpu=0), or set mode = "cdi" under [nvidia-container-runtime]',
  });
}

/**
 * Decides the path for a GPU request's devices (`devices` empty = `none`). Syntax only, so that parsing never
 * fails on what the mode cannot serve: a request the direct path cannot serve either (CDI names in legacy mode,
 * or mixed with plain ids in auto mode) is sent there, and the plan rejects it with cdiOnDirectPathError.
 * Throws NvrError for csv mode and a bad default kind.
 */
export function chooseInjection(
  mode: RuntimeMode,
  devices: readonly DeviceSelector[],
  source: DeviceRequest['source'],
  defaultKind: string,
): Injection {
  const cdi = devices.filter((d) => d.kind === 'cdi').map(formatSelector);
  const plain = devices.filter((d) => d.kind !== 'cdi');
  switch (mode) {
    case 'csv':
      throw new NvrError('CONFIG', 'mode = "csv" (Tegra CSV mount specs) is not supported by nvidia-runtime', { fix: FIX_MODE });
    case 'legacy':
      return { path: 'direct' };
    case 'auto':
      if (cdi.length === 0 || plain.length > 0) return { path: 'direct' };
      return {
        path: 'cdi',
        names: cdi,
        reason: `mode "auto": ${source === 'annotations' ? 'devices requested by CDI annotations' : 'every requested device is a CDI name'}, so they are injected from CDI specs`,
      };
    case 'cdi': {
      checkKind(defaultKind);
      const names = devices.length === 0 ? [`${defaultKind}=none`] : devices.map((d) => cdiNameOf(d, defaultKind));
      const mapped = plain.length > 0 || devices.length === 0 ? ` (unqualified ids get the default kind ${defaultKind})` : '';
      return { path: 'cdi', names: [...new Set(names)], reason: `mode "cdi": devices are injected from CDI specs${mapped}` };
    }
  }
}
