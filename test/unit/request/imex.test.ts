/**
 * IMEX channel requests (src/request/imex.ts): the NVIDIA_IMEX_CHANNELS grammar, the imex/<ch> volume mounts, and
 * how parseRequest gates them (GPU containers only, privilege, volume-mount policy, ignore-imex-channel-requests,
 * the CDI path).
 */
import fc from 'fast-check';
import { IMEX_CHANNEL_LIMIT } from '../../../src/host/devices.js';
import { imexChannelsFromMounts, parseImexChannelList } from '../../../src/request/imex.js';
import { DEFAULT_REQUEST_POLICY, parseRequest } from '../../../src/request/parse.js';
import type { ContainerFacts, DeviceRequest, RequestPolicy } from '../../../src/request/types.js';
import { thrown } from '../../helpers/errors.js';

const PRIV = ['CAP_SYS_ADMIN'];
const UNPRIV = ['CAP_CHOWN'];
const imexMount = (ch: string) => ({ source: '/dev/null', destination: `/var/run/nvidia-container-devices/imex/${ch}` });
const req = (env: string[], more: Partial<ContainerFacts> = {}, p: Partial<RequestPolicy> = {}): DeviceRequest =>
  parseRequest({ env, mounts: [], boundingCapabilities: UNPRIV, annotations: {}, ...more }, { ...DEFAULT_REQUEST_POLICY, ...p });

describe('parseImexChannelList', () => {
  it.each<[string, ReturnType<typeof parseImexChannelList>]>([
    ['0', { kind: 'channels', channels: [0] }],
    ['1,0', { kind: 'channels', channels: [0, 1] }],
    [' 3 , 3,,2 ', { kind: 'channels', channels: [2, 3] }],
    ['007', { kind: 'channels', channels: [7] }],
    ['1048575', { kind: 'channels', channels: [1048575] }],
    ['', { kind: 'channels', channels: [] }],
    ['none', { kind: 'channels', channels: [] }],
    ['void', { kind: 'channels', channels: [] }],
    ['none,2', { kind: 'channels', channels: [2] }],
    ['all', { kind: 'all' }],
    ['0,all', { kind: 'all' }],
  ])('%j → %j', (value, expected) => {
    expect(parseImexChannelList(value)).toEqual(expected);
  });

  it.each(['1048576', '-1', '1.5', 'channel1', 'ALL', '0x1', '99999999999', '1 2'])('%j is an INPUT error naming the item', (value) => {
    const e = thrown(() => parseImexChannelList(value));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain(`"${value}"`);
    expect(e.message).toContain('NVIDIA_IMEX_CHANNELS');
  });

  it('any list of valid channel numbers parses to the sorted unique set (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: IMEX_CHANNEL_LIMIT - 1 }), { maxLength: 12 }), fc.array(fc.constantFrom(' ', '', 'none')), (chs, junk) => {
        const items = [...chs.map(String), ...junk];
        const parsed = parseImexChannelList(items.join(','));
        expect(parsed).toEqual({ kind: 'channels', channels: [...new Set(chs)].sort((a, b) => a - b) });
      }),
    );
  });

  it('any item that is not a channel number, all, none or void is refused (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }).filter((s) => !s.includes(',') && !/^\s*(\d{1,7}|all|none|void)?\s*$/.test(s)), (item) => {
        expect(() => parseImexChannelList(`0,${item}`)).toThrow(/not an IMEX channel/);
      }),
    );
  });
});

describe('imexChannelsFromMounts', () => {
  it('reads /dev/null mounts under imex/, sorted and unique; ignores others', () => {
    expect(imexChannelsFromMounts([imexMount('3'), imexMount('1/'), imexMount('3'), { source: '/tmp/x', destination: '/var/run/nvidia-container-devices/imex/5' }, { source: '/dev/null', destination: '/var/run/nvidia-container-devices/0' }])).toEqual([1, 3]);
  });
  it('a bad channel in a mount is an error naming the mount', () => {
    expect(thrown(() => imexChannelsFromMounts([imexMount('x')])).message).toMatch(/volume mount ".*imex\/x".*"x" is not an IMEX channel/);
  });
});

describe('parseRequest: IMEX channels', () => {
  it.each<[string[], number[] | undefined]>([
    [['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1'], [1]],
    [['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=2,0'], [0, 2]],
    [['NVIDIA_VISIBLE_DEVICES=none', 'NVIDIA_IMEX_CHANNELS=0'], [0]],
    [['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=all'], undefined],
    [['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=none'], undefined],
    [['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS='], undefined],
    [['NVIDIA_VISIBLE_DEVICES=0'], undefined],
    [['CUDA_VERSION=12.0', 'NVIDIA_IMEX_CHANNELS=3'], [3]],
  ])('%j → %j', (env, channels) => {
    expect(req(env).imexChannels).toEqual(channels);
  });

  it('not a GPU container: IMEX channels alone ask for nothing, and are not validated', () => {
    expect(req(['NVIDIA_IMEX_CHANNELS=1']).gpu).toBe(false);
    expect(req(['NVIDIA_VISIBLE_DEVICES=void', 'NVIDIA_IMEX_CHANNELS=bogus']).gpu).toBe(false);
  });

  it('all is dropped with a reason, as the toolkit (ImexChannelsFromEnvVar)', () => {
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=all']).reasons.join('\n')).toMatch(/"all" is not honoured/);
  });

  it('a bad channel in a GPU container is an INPUT error naming it', () => {
    const e = thrown(() => req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1,abc']));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain('"abc"');
  });

  it('the env is privilege-gated like NVIDIA_VISIBLE_DEVICES', () => {
    const refuse = { acceptEnvvarWhenUnprivileged: false };
    const mounts = [{ source: '/dev/null', destination: '/var/run/nvidia-container-devices/0' }];
    const r = req(['NVIDIA_IMEX_CHANNELS=1'], { mounts }, { ...refuse, acceptVolumeMounts: true });
    expect(r.gpu).toBe(true);
    expect(r.imexChannels).toBeUndefined();
    expect(r.reasons).toContain('NVIDIA_IMEX_CHANNELS ignored: container is unprivileged and accept-nvidia-visible-devices-envvar-when-unprivileged = false');
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1'], { boundingCapabilities: PRIV }, refuse).imexChannels).toEqual([1]);
  });

  it('volume mounts win over the env when accepted, and are ignored (with a reason) when not', () => {
    const mounts = [imexMount('4'), imexMount('2')];
    expect(req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1'], { mounts }, { acceptVolumeMounts: true }).imexChannels).toEqual([2, 4]);
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1'], { mounts });
    expect(r.imexChannels).toEqual([1]);
    expect(r.reasons.join('\n')).toMatch(/2 IMEX channel volume mount\(s\) ignored/);
    // An IMEX mount is not a GPU request by itself.
    expect(req([], { mounts }, { acceptVolumeMounts: true }).gpu).toBe(false);
  });

  it('features.ignore-imex-channel-requests drops every request', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1'], { mounts: [imexMount('2')] }, { ignoreImexChannelRequests: true, acceptVolumeMounts: true });
    expect(r.imexChannels).toBeUndefined();
    expect(r.reasons).toContain('IMEX channel requests ignored: features.ignore-imex-channel-requests = true');
  });

  it('the CDI path ignores NVIDIA_IMEX_CHANNELS, and says so (as v1.17.9)', () => {
    const r = req(['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=0', 'NVIDIA_IMEX_CHANNELS=1']);
    expect(r.cdiDevices).toEqual(['nvidia.com/gpu=0']);
    expect(r.imexChannels).toBeUndefined();
    expect(r.reasons.join('\n')).toMatch(/NVIDIA_IMEX_CHANNELS ignored on the CDI path/);
  });
});
