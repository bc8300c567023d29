/**
 * Fully-qualified CDI device names, `vendor/class=name` (FACTS §3.2, upstream pkg/parser). The kind is
 * `vendor/class`. Parsing splits on the first `=` and then on the first `/`; a string starting with `/` is a
 * path, never a CDI name.
 */

/** vendor and class: a letter first, a letter or digit last, `[A-Za-z0-9_.-]` between. */
const VENDOR_OR_CLASS = /^[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
/** device name: a letter or digit first and last, `[A-Za-z0-9_.:-]` between. */
const DEVICE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

export interface QualifiedName {
  vendor: string;
  class: string;
  name: string;
  /** `vendor/class`. */
  kind: string;
}

/** Why `vendor` is not a valid vendor, or undefined. */
export function vendorProblem(vendor: string): string | undefined {
  if (vendor === '') return 'vendor is empty';
  return VENDOR_OR_CLASS.test(vendor) ? undefined : `vendor "${vendor}" must start with a letter, end with a letter or digit and contain only letters, digits, _ . -`;
}

/** Why `cls` is not a valid class, or undefined. */
export function classProblem(cls: string): string | undefined {
  if (cls === '') return 'class is empty';
  return VENDOR_OR_CLASS.test(cls) ? undefined : `class "${cls}" must start with a letter, end with a letter or digit and contain only letters, digits, _ . -`;
}

/** Why `name` is not a valid device name, or undefined. */
export function deviceNameProblem(name: string): string | undefined {
  if (name === '') return 'device name is empty';
  return DEVICE_NAME.test(name) ? undefined : `device name "${name}" must start and end with a letter or digit and contain only letters, digits, _ . : -`;
}

/** Why `kind` (`vendor/class`) is invalid, or undefined. */
export function kindProblem(kind: string): string | undefined {
  const slash = kind.indexOf('/');
  if (slash < 0) return `kind "${kind}" must be vendor/class`;
  return vendorProblem(kind.slice(0, slash)) ?? classProblem(kind.slice(slash + 1));
}

/** Parse `vendor/class=name`; undefined when the string is not a valid fully-qualified name. */
export function parseQualifiedName(text: string): QualifiedName | undefined {
  if (text.startsWith('/')) return undefined;
  const eq = text.indexOf('=');
  if (eq < 0) return undefined;
  const kind = text.slice(0, eq);
  const name = text.slice(eq + 1);
  const slash = kind.indexOf('/');
  if (slash < 0) return undefined;
  const vendor = kind.slice(0, slash);
  const cls = kind.slice(slash + 1);
  if (vendorProblem(vendor) || classProblem(cls) || deviceNameProblem(name)) return undefined;
  return { vendor, class: cls, name, kind };
}

export function isQualifiedName(text: string): boolean {
  return parseQualifiedName(text) !== undefined;
}

/** `kind=name`, e.g. qualify('nvidia.com/gpu', '0') = 'nvidia.com/gpu=0' (not validated). */
export function qualify(kind: string, name: string): string {
  return `${kind}=${name}`;
}
