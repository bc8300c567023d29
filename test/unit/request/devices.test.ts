import { NvrError } from '../../../src/errors.js';
import {
  formatSelector,
  isCdiName,
  normalizePciBusId,
  parseDeviceItem,
  parseVisibleDevices,
} from '../../../src/request/devices.js';

const UUID = 'GPU-12345678-9abc-def0-1234-56789abcdef0';
const MIG = 'MIG-abcdef01-2345-6789-abcd-ef0123456789';

function devices(value: string | undefined): string[] | 'not-gpu' {
  const v = parseVisibleDevices(value);
  return v.gpu ? v.devices.map(formatSelector) : 'not-gpu';
}

describe('parseVisibleDevices', () => {
  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['blank', ' , ,'],
    ['void', 'void'],
    ['VOID', 'VOID'],
    ['any void token', '0,void'],
    ['void after all', 'all, void '],
  ])('%s → not a GPU container', (_name, value) => {
    expect(devices(value)).toBe('not-gpu');
  });

  it.each([
    ['all', ['all']],
    ['ALL', ['all']],
    [' All ', ['all']],
    ['0,all,1', ['all']],
  ])('%s → all', (value, expected) => {
    expect(devices(value)).toEqual(expected);
  });

  it('none → a GPU container with no devices (driver files only)', () => {
    expect(devices('none')).toEqual([]);
    expect(devices('NONE')).toEqual([]);
  });

  it('none contributes nothing next to real devices', () => {
    expect(devices('none,1')).toEqual(['1']);
  });

  it('parses indices, trims items and skips empty ones', () => {
    expect(devices(' 0 ,, 1,2 ')).toEqual(['0', '1', '2']);
    expect(parseVisibleDevices('3')).toEqual({ gpu: true, devices: [{ kind: 'index', index: 3 }] });
  });

  it('collapses duplicates by normalised form (the peer emits an empty device for 0,0)', () => {
    expect(devices('0,0')).toEqual(['0']);
    expect(devices('00,0')).toEqual(['0']);
    expect(devices(`${UUID},${UUID.toUpperCase().replace('GPU-', 'gpu-')}`)).toEqual([UUID]);
    expect(devices('0000:07:00.0,00000000:07:00.0')).toEqual(['00000000:07:00.0']);
    expect(devices('0:1,0:1,1')).toEqual(['0:1', '1']);
  });

  it('keeps request order', () => {
    expect(devices('2,0,1')).toEqual(['2', '0', '1']);
  });

  it('parses GPU UUIDs case-insensitively into lowercase', () => {
    expect(parseDeviceItem(UUID.toUpperCase())).toEqual({ kind: 'uuid', uuid: UUID });
  });

  it('parses both MIG forms', () => {
    expect(parseDeviceItem(MIG)).toEqual({ kind: 'mig-uuid', uuid: MIG });
    expect(parseDeviceItem(`MIG-${UUID}/1/0`)).toEqual({ kind: 'mig-uuid', uuid: `MIG-${UUID}/1/0` });
    expect(parseDeviceItem('0:1')).toEqual({ kind: 'mig-index', gpu: 0, mig: 1 });
    expect(parseDeviceItem('12:3')).toEqual({ kind: 'mig-index', gpu: 12, mig: 3 });
  });

  it('parses PCI bus ids and normalises them to an 8-digit lowercase domain', () => {
    expect(parseDeviceItem('0000:07:00.0')).toEqual({ kind: 'pci', busId: '00000000:07:00.0' });
    expect(parseDeviceItem('0:AF:1f.1')).toEqual({ kind: 'pci', busId: '00000000:af:1f.1' });
    expect(normalizePciBusId('00000000:07:00.0')).toBe('00000000:07:00.0');
    expect(normalizePciBusId('0:07:20.0')).toBeUndefined(); // device number is 5 bits
    expect(normalizePciBusId('07:00.0')).toBeUndefined();
  });

  it('keeps fully-qualified CDI names as they are', () => {
    expect(devices('nvidia.com/gpu=0,nvidia.com/gpu=all,vendor.io/class=GPU-x:1')).toEqual([
      'nvidia.com/gpu=0',
      'nvidia.com/gpu=all',
      'vendor.io/class=GPU-x:1',
    ]);
    expect(parseDeviceItem('nvidia.com/gpu=0:1')).toEqual({ kind: 'cdi', name: 'nvidia.com/gpu=0:1' });
    expect(devices('0,nvidia.com/gpu=1')).toEqual(['0', 'nvidia.com/gpu=1']);
  });

  it.each([
    'nvidia.com/gpu=',
    '/nvidia.com/gpu=0',
    'nvidia.com=0',
    '1nvidia.com/gpu=0',
    'nvidia.com/gpu=-0',
    'nvidia.com/gpu/x=0',
  ])('rejects the malformed CDI name %s', (name) => {
    expect(isCdiName(name)).toBe(false);
    expect(() => parseDeviceItem(name)).toThrow(NvrError);
  });

  it.each([
    'gpu0',
    '-1',
    '0.5',
    'GPU-1234',
    'MIG-',
    '0:',
    ':1',
    '0:1:2',
    'MIG-GPU-1234/1/0',
    '0x1',
    '1e3',
    '12345678901',
  ])('rejects %s with a DEVICE error naming the item', (item) => {
    let err: unknown;
    try {
      parseVisibleDevices(`0,${item}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NvrError);
    const e = err as NvrError;
    expect(e.code).toBe('DEVICE');
    expect(e.message).toBe(
      `NVIDIA_VISIBLE_DEVICES: ${JSON.stringify(item)} is not a device index, UUID, PCI bus id, MIG device or CDI name`,
    );
    expect(e.fix).toMatch(/GPU index/);
  });

  it('escapes and truncates hostile items in the message', () => {
    const item = `x\n${'y'.repeat(500)}`;
    try {
      parseVisibleDevices(item);
      throw new Error('expected a throw');
    } catch (e) {
      expect((e as NvrError).message).not.toContain('\n');
      expect((e as NvrError).message.length).toBeLessThan(250);
    }
  });
});
