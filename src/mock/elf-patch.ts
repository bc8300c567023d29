/**
 * In-place patches of the native mock artifacts (native/README.md). Both work on a byte copy of the library,
 * never on the original, and never change the file's size or layout: the topology goes into a zeroed data
 * array the fake NVML reserved for it, the soname (and, for libnvidia-stub-needed.so, one DT_NEEDED name) into a
 * fixed-width placeholder in `.dynstr`.
 */
import { NvrError } from '../errors.js';

export const TOPOLOGY_MARKER = 'NVMOCK-TOPOLOGY-V1\n';
/** Size of `char nvmock_topology[]` in fake_nvml.c, marker included. */
export const TOPOLOGY_ARRAY_SIZE = 262144;
export const SONAME_PLACEHOLDER = 'NVMOCK_SONAME_' + 'X'.repeat(50);
export const MAX_SONAME_LENGTH = SONAME_PLACEHOLDER.length; // 64
/** The DT_NEEDED string of libnvidia-stub-needed.so (binding.gyp): same width, a distinct prefix. */
export const NEEDED_PLACEHOLDER = 'NVMOCK_NEEDED_' + 'X'.repeat(50);
export const MAX_NEEDED_LENGTH = NEEDED_PLACEHOLDER.length; // 64

/** Offset of the only occurrence of `needle`, or a typed error naming `what` if it occurs 0 or ≥2 times. */
function findOnce(haystack: Buffer, needle: string, what: string): number {
  const bytes = Buffer.from(needle, 'latin1');
  const first = haystack.indexOf(bytes);
  if (first < 0) {
    throw new NvrError('TOPOLOGY', `${what} not found in the library`, {
      fix: 'rebuild the native mock artifacts with npm ci (the library is not a mock artifact)',
    });
  }
  if (haystack.indexOf(bytes, first + 1) >= 0) {
    throw new NvrError('TOPOLOGY', `${what} occurs more than once in the library`, {
      fix: 'rebuild the native mock artifacts with npm ci (the library must contain it exactly once)',
    });
  }
  return first;
}

/** A copy of `libBytes` whose topology array holds `text` (NUL-terminated, rest of the array zeroed). */
export function embedTopology(libBytes: Buffer, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  if (payload.includes(0)) {
    throw new NvrError('TOPOLOGY', 'topology text contains a NUL byte', { fix: 'remove NUL characters from names' });
  }
  const markerAt = findOnce(libBytes, TOPOLOGY_MARKER, `topology marker ${JSON.stringify(TOPOLOGY_MARKER)}`);
  const start = markerAt + TOPOLOGY_MARKER.length;
  const end = Math.min(markerAt + TOPOLOGY_ARRAY_SIZE, libBytes.length);
  const capacity = end - start;
  if (payload.length + 1 > capacity) {
    throw new NvrError('TOPOLOGY', `topology text is ${payload.length} bytes, the library holds at most ${capacity - 1}`, {
      fix: 'use fewer GPUs or MIG devices, or shorter names',
    });
  }
  const out = Buffer.from(libBytes);
  out.fill(0, start, end);
  payload.copy(out, start);
  return out;
}

/**
 * A copy of `libBytes` with the 64-byte `placeholder` in .dynstr replaced by `value`, NUL-padded. The string
 * table keeps its size and every other string its offset, so the ELF stays valid.
 */
function patchPlaceholder(libBytes: Buffer, placeholder: string, value: string, what: string): Buffer {
  if (value.length === 0 || value.length > placeholder.length || !/^[\x21-\x7e]+$/.test(value)) {
    throw new NvrError('INPUT', `${what} ${JSON.stringify(value)} must be 1 to ${placeholder.length} printable characters`, {
      fix: `use a shorter ${what}`,
    });
  }
  const at = findOnce(libBytes, placeholder, `${what} placeholder ${placeholder}`);
  const out = Buffer.from(libBytes);
  out.fill(0, at, at + placeholder.length);
  out.write(value, at, 'latin1');
  return out;
}

/** A copy of the stub library with its SONAME placeholder replaced by `soname`, NUL-padded. */
export function patchSoname(libBytes: Buffer, soname: string): Buffer {
  return patchPlaceholder(libBytes, SONAME_PLACEHOLDER, soname, 'soname');
}

/**
 * A copy of libnvidia-stub-needed.so with its DT_NEEDED placeholder replaced by `name` (a library the loader
 * must find next to it, e.g. libnvidia-glcore.so.550.54.15), NUL-padded.
 */
export function patchNeeded(libBytes: Buffer, name: string): Buffer {
  return patchPlaceholder(libBytes, NEEDED_PLACEHOLDER, name, 'needed library name');
}
