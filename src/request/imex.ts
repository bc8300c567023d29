/**
 * IMEX channel requests (PEER.md §3.8 "NVIDIA_IMEX_CHANNELS", FACTS.md §1.9): which
 * /dev/nvidia-caps-imex-channels/channel<N> nodes a GPU container asks for. Pure: no I/O; whether a channel exists
 * on the host is decided when the edits are built (src/edits/build.ts).
 *
 * As the toolkit's hook (getImexChannels) reads them:
 *   - `[features] ignore-imex-channel-requests = true` → none;
 *   - accepted volume mounts of /dev/null onto /var/run/nvidia-container-devices/imex/<ch> win over the env;
 *   - NVIDIA_IMEX_CHANNELS: comma list of decimal channel ids (< 2^20, as libnvidia-container's --imex-channel);
 *     `all` is dropped (ImexChannelsFromEnvVar returns nil for it: a legacy CUDA image would otherwise get every
 *     channel), and unset, empty, `none` and `void` ask for nothing;
 *   - the env is privilege-gated like NVIDIA_VISIBLE_DEVICES (accept-nvidia-visible-devices-envvar-when-unprivileged).
 */
import { posix } from 'node:path';
import { NvrError } from '../errors.js';
import { IMEX_CHANNEL_LIMIT } from '../host/devices.js';
import { quote } from './devices.js';
import type { ContainerFacts } from './types.js';

export const IMEX_ENV = 'NVIDIA_IMEX_CHANNELS';
const MOUNT_ROOT = '/var/run/nvidia-container-devices';

export type ImexChannelList = { kind: 'all' } | { kind: 'channels'; channels: number[] };

/** One channel id: decimal digits, below 2^20. `where` names the source in the error. */
export function parseImexChannel(item: string, where: string): number {
  if (/^\d{1,7}$/.test(item) && Number(item) < IMEX_CHANNEL_LIMIT) return Number(item);
  throw new NvrError('INPUT', `${where}: ${quote(item)} is not an IMEX channel (expected a decimal channel number below ${IMEX_CHANNEL_LIMIT})`, {
    fix: `set ${IMEX_ENV} to a comma-separated list of channel numbers (e.g. 0,1), or none`,
  });
}

/**
 * The value of NVIDIA_IMEX_CHANNELS: `all` (anywhere in the list), or the channels, ascending and unique. Empty
 * items are skipped; `none` and `void` contribute nothing.
 */
export function parseImexChannelList(value: string, where: string = IMEX_ENV): ImexChannelList {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.includes('all')) return { kind: 'all' };
  const channels = items.filter((s) => s !== 'none' && s !== 'void').map((s) => parseImexChannel(s, where));
  return { kind: 'channels', channels: [...new Set(channels)].sort((a, b) => a - b) };
}

/** Channels requested by /dev/null mounts onto /var/run/nvidia-container-devices/imex/<ch>, ascending, unique. */
export function imexChannelsFromMounts(mounts: ContainerFacts['mounts']): number[] {
  const out = new Set<number>();
  for (const mount of mounts ?? []) {
    if (typeof mount?.source !== 'string' || typeof mount.destination !== 'string') continue;
    if (posix.normalize(mount.source) !== '/dev/null') continue;
    const dest = posix.normalize(mount.destination).replace(/\/+$/, '');
    if (!dest.startsWith(`${MOUNT_ROOT}/imex/`)) continue;
    out.add(parseImexChannel(dest.slice(MOUNT_ROOT.length + '/imex/'.length), `volume mount ${quote(mount.destination)}`));
  }
  return [...out].sort((a, b) => a - b);
}

export interface ImexPolicy {
  acceptVolumeMounts: boolean;
  acceptEnvvarWhenUnprivileged: boolean;
  ignoreImexChannelRequests?: boolean;
}

/** The channels a GPU container gets on the direct path, with the reasons (for `explain`). */
export function imexChannelsRequested(
  env: ReadonlyMap<string, string>,
  mounts: ContainerFacts['mounts'],
  privileged: boolean,
  policy: ImexPolicy,
  reasons: string[],
): number[] {
  const value = env.get(IMEX_ENV);
  const fromMounts = imexChannelsFromMounts(mounts);
  const asked = fromMounts.length > 0 || (value !== undefined && value.trim() !== '');
  if (!asked) return [];
  if (policy.ignoreImexChannelRequests) {
    reasons.push('IMEX channel requests ignored: features.ignore-imex-channel-requests = true');
    return [];
  }
  if (fromMounts.length > 0) {
    if (policy.acceptVolumeMounts) {
      reasons.push(`IMEX channels requested by volume mounts: ${fromMounts.join(',')}${value !== undefined ? `; ${IMEX_ENV} is not consulted` : ''}`);
      return fromMounts;
    }
    reasons.push(`${fromMounts.length} IMEX channel volume mount(s) ignored: accept-nvidia-visible-devices-as-volume-mounts = false`);
  }
  if (value === undefined || value.trim() === '') return [];
  if (!privileged && !policy.acceptEnvvarWhenUnprivileged) {
    reasons.push(`${IMEX_ENV} ignored: container is unprivileged and accept-nvidia-visible-devices-envvar-when-unprivileged = false`);
    return [];
  }
  const list = parseImexChannelList(value);
  if (list.kind === 'all') {
    reasons.push(`${IMEX_ENV}=${quote(value)}: "all" is not honoured (as NVIDIA's toolkit): name the channels`);
    return [];
  }
  reasons.push(`${IMEX_ENV}=${quote(value)}: ${list.channels.length > 0 ? `IMEX channels ${list.channels.join(',')}` : 'no IMEX channels'}`);
  return list.channels;
}
