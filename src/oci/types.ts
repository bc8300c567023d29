/**
 * The OCI runtime spec (config.json) as *open* records: only the fields this project reads or writes are typed;
 * every other key is carried through untouched (runtime-spec config.md §Extensibility: unknown properties MUST be
 * ignored, and a rewriter must not drop them).
 *
 * Numbers: a number whose JSON text round-trips exactly through a JS double is a plain `number`; anything else
 * (uint64 limits such as 18446744073709551615, `1.0`, `1e3`, `-0`) stays a `LosslessNumber` holding its source
 * text, so serialising writes back exactly what was read.
 */
import type { LosslessNumber } from 'lossless-json';

export type JsonNumber = number | LosslessNumber;
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

export interface OciMount extends JsonObject {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** linux.devices[] (config-linux.md "Devices"); fileMode is decimal in JSON. */
export interface OciLinuxDevice extends JsonObject {
  path: string;
  type: string;
  major?: JsonNumber;
  minor?: JsonNumber;
  fileMode?: JsonNumber;
  uid?: JsonNumber;
  gid?: JsonNumber;
}

/** linux.resources.devices[] — the cgroup device allow-list, applied in order. */
export interface OciDeviceRule extends JsonObject {
  allow: boolean;
  type?: string;
  major?: JsonNumber;
  minor?: JsonNumber;
  access?: string;
}

export interface OciHook extends JsonObject {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: JsonNumber;
}

export const OCI_HOOK_NAMES = [
  'prestart',
  'createRuntime',
  'createContainer',
  'startContainer',
  'poststart',
  'poststop',
] as const;
export type OciHookName = (typeof OCI_HOOK_NAMES)[number];

export type OciHooks = JsonObject & { [K in OciHookName]?: OciHook[] };

export interface OciUser extends JsonObject {
  uid?: JsonNumber;
  gid?: JsonNumber;
  additionalGids?: JsonNumber[];
}

export interface OciCapabilities extends JsonObject {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface OciProcess extends JsonObject {
  env?: string[];
  user?: OciUser;
  capabilities?: OciCapabilities;
}

export interface OciRoot extends JsonObject {
  path: string;
  readonly?: boolean;
}

export interface OciResources extends JsonObject {
  devices?: OciDeviceRule[];
}

export interface OciLinux extends JsonObject {
  devices?: OciLinuxDevice[];
  resources?: OciResources;
}

export interface OciSpec extends JsonObject {
  ociVersion?: string;
  process?: OciProcess;
  root?: OciRoot;
  mounts?: OciMount[];
  hooks?: OciHooks;
  annotations?: Record<string, string>;
  linux?: OciLinux;
}
