import { NvrError } from '../../../src/errors.js';
import {
  embedTopology,
  MAX_NEEDED_LENGTH,
  NEEDED_PLACEHOLDER,
  patchNeeded,
  patchSoname,
  SONAME_PLACEHOLDER,
  TOPOLOGY_ARRAY_SIZE,
  TOPOLOGY_MARKER,
} from '../../../src/mock/elf-patch.js';
import { thrown } from '../../helpers/errors.js';

/** A fake library: junk, the zeroed topology array starting with the marker, junk. */
function fakeLib(prefix = 100): Buffer {
  const buf = Buffer.alloc(prefix + TOPOLOGY_ARRAY_SIZE + 50, 0);
  buf.fill(0x41, 0, prefix);
  buf.write(TOPOLOGY_MARKER, prefix, 'latin1');
  buf.fill(0x42, prefix + TOPOLOGY_ARRAY_SIZE);
  return buf;
}

describe('embedTopology', () => {
  it('writes the text and a NUL right after the marker, leaving the original untouched', () => {
    const lib = fakeLib();
    const out = embedTopology(lib, 'driver\t550.54.15\n');
    const start = 100 + TOPOLOGY_MARKER.length;
    expect(out.subarray(start, start + 17).toString()).toBe('driver\t550.54.15\n');
    expect(out[start + 17]).toBe(0);
    expect(out.length).toBe(lib.length);
    expect(out.subarray(0, 100 + TOPOLOGY_MARKER.length)).toEqual(lib.subarray(0, 100 + TOPOLOGY_MARKER.length));
    expect(out.subarray(100 + TOPOLOGY_ARRAY_SIZE)).toEqual(lib.subarray(100 + TOPOLOGY_ARRAY_SIZE));
    expect(lib[start]).toBe(0);
  });

  it('re-embedding a shorter text leaves no trace of the longer one', () => {
    const once = embedTopology(fakeLib(), 'x'.repeat(1000));
    const twice = embedTopology(once, 'short');
    const start = 100 + TOPOLOGY_MARKER.length;
    expect(twice.subarray(start, start + 1000).toString('latin1').replace(/\0+$/, '')).toBe('short');
  });

  it('accepts exactly the capacity and rejects one byte more', () => {
    const capacity = TOPOLOGY_ARRAY_SIZE - TOPOLOGY_MARKER.length;
    expect(() => embedTopology(fakeLib(), 'x'.repeat(capacity - 1))).not.toThrow();
    const e = thrown(() => embedTopology(fakeLib(), 'x'.repeat(capacity)));
    expect(e.message).toContain(`holds at most ${capacity - 1}`);
    expect(e.fix).toBeTruthy();
  });

  it('rejects a library without the marker or with two markers', () => {
    expect(thrown(() => embedTopology(Buffer.alloc(1000), 'x')).message).toContain('not found');
    const two = Buffer.concat([fakeLib(), fakeLib()]);
    expect(thrown(() => embedTopology(two, 'x')).message).toContain('more than once');
  });
});

describe('patchSoname', () => {
  const stub = (): Buffer => Buffer.from(`\0libc.so.6\0${SONAME_PLACEHOLDER}\0nvmock_stub\0`, 'latin1');

  it('overwrites the placeholder with the soname, NUL padded, same size', () => {
    const out = patchSoname(stub(), 'libcuda.so.1');
    expect(out.length).toBe(stub().length);
    expect(out.toString('latin1')).toBe(`\0libc.so.6\0libcuda.so.1${'\0'.repeat(64 - 12)}\0nvmock_stub\0`);
  });

  it('allows 64 characters and rejects 65 or an empty soname', () => {
    expect(() => patchSoname(stub(), 'l'.repeat(64))).not.toThrow();
    expect(thrown(() => patchSoname(stub(), 'l'.repeat(65))).message).toContain('1 to 64');
    expect(() => patchSoname(stub(), '')).toThrow(NvrError);
  });

  it('rejects a missing or duplicated placeholder', () => {
    expect(thrown(() => patchSoname(Buffer.from('no placeholder'), 'libcuda.so.1')).message).toContain('not found');
    expect(thrown(() => patchSoname(Buffer.concat([stub(), stub()]), 'libcuda.so.1')).message).toContain('more than once');
  });
});

describe('patchNeeded', () => {
  const stub = (): Buffer => Buffer.from(`\0${NEEDED_PLACEHOLDER}\0${SONAME_PLACEHOLDER}\0nvmock_stub\0`, 'latin1');

  it('uses a placeholder of the same width as the soname one, with a distinct prefix', () => {
    expect(NEEDED_PLACEHOLDER).toHaveLength(64);
    expect(MAX_NEEDED_LENGTH).toBe(64);
    expect(NEEDED_PLACEHOLDER).not.toBe(SONAME_PLACEHOLDER);
    expect(NEEDED_PLACEHOLDER.startsWith('NVMOCK_NEEDED_')).toBe(true);
  });

  it('overwrites only the DT_NEEDED placeholder; both patches compose in either order', () => {
    const out = patchNeeded(stub(), 'libnvidia-glcore.so.550.54.15');
    expect(out.length).toBe(stub().length);
    expect(out.toString('latin1')).toBe(`\0libnvidia-glcore.so.550.54.15${'\0'.repeat(64 - 29)}\0${SONAME_PLACEHOLDER}\0nvmock_stub\0`);
    const both = patchSoname(out, 'libGL.so.1');
    expect(patchNeeded(patchSoname(stub(), 'libGL.so.1'), 'libnvidia-glcore.so.550.54.15')).toEqual(both);
    expect(both.includes('NVMOCK_')).toBe(false);
  });

  it('allows 64 characters and rejects 65, an empty name or a missing/duplicated placeholder', () => {
    expect(() => patchNeeded(stub(), 'l'.repeat(64))).not.toThrow();
    const e = thrown(() => patchNeeded(stub(), 'l'.repeat(65)));
    expect(e.message).toContain('needed library name');
    expect(e.message).toContain('1 to 64');
    expect(e.fix).toBeTruthy();
    expect(() => patchNeeded(stub(), '')).toThrow(NvrError);
    expect(() => patchNeeded(stub(), 'lib with space.so')).toThrow(NvrError);
    // The plain stub has no DT_NEEDED placeholder: a clear error, not a silent no-op.
    expect(thrown(() => patchNeeded(Buffer.from(`\0${SONAME_PLACEHOLDER}\0`), 'libx.so.1')).message).toContain('not found');
    expect(thrown(() => patchNeeded(Buffer.concat([stub(), stub()]), 'libx.so.1')).message).toContain('more than once');
  });
});
