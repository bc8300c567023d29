/**
 * In-place patches of the native mock artifacts (native/README.md). Both work on a byte copy of the library,
 * never on the original, and never change the file's size or layout: the topology goes into a zeroed data
 * array the fake NVML reserved for it, the soname into a fixed-width placeholder in `.dynstr`.
 */
import { NvrError } from '../errors.js';

export const TOPOLOGY_MARKER = 'NVMOCK-TOPOLOGY-V1\n';
/** Size of `char nvmock_topology[]` in fake_nvml.c, marker included. */
export const TOPOLOGY_ARRAY_SIZE = 262144;
export const SONAME_PLACEHOLDER = 'NVMOCK_SONAME_' + 'X'.repeat(50);
export const MAX_SONAME_LENGTH = SONAME_PLACEHOLDER.length; // 64

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

/** A copy of the stub library with its SONAME placeholder replaced by `soname`, NUL-padded. */
export function patchSoname(libBytes: Buffer, soname: string): Buffer {
  if (soname.length === 0 || soname.length > MAX_SONAME_LENGTH || !/^[\x21-\x7e]+$/.test(soname)) {
    throw new NvrError('INPUT', `soname ${JSON.stringify(soname)} must be 1 to ${MAX_SONAME_LENGTH} printable characters`, {
      fix: 'use a shorter soname',
    });
  }
  const at = findOnce(libBytes, SONAME_PLACEHOLDER, `soname placeholder ${SONAME_PLACEHOLDER}`);
  const out = Buffer.from(libBytes);
  out.fill(0, at, at + SONAME_PLACEHOLDER.length);
  out.write(soname, at, 'latin1');
  return out;
}
