/**
 * CDI device requests that do not come through NVIDIA_VISIBLE_DEVICES (FACTS §3.3, PEER §3.8): annotations whose
 * key starts with a configured prefix (`cdi.k8s.io/` by default), as kubelet/containerd/CRI-O and the
 * k8s-device-plugin's `cdi-annotations` strategy write them. Pure: no I/O.
 */
import { NvrError } from '../errors.js';
import { isCdiName, quote } from './devices.js';

export const DEFAULT_ANNOTATION_PREFIXES: readonly string[] = Object.freeze(['cdi.k8s.io/']);
export const DEFAULT_CDI_KIND = 'nvidia.com/gpu';

export interface AnnotationDevices {
  /** Fully-qualified CDI names, in key order then value order, unique. */
  names: string[];
  /** The annotation keys that asked, sorted. */
  keys: string[];
}

/** The annotation keys that match any of `prefixes` (an empty prefix matches nothing), sorted for determinism. */
export function cdiAnnotationKeys(annotations: Readonly<Record<string, string>>, prefixes: readonly string[]): string[] {
  return Object.keys(annotations)
    .filter((k) => prefixes.some((p) => p !== '' && k.startsWith(p)))
    .sort();
}

/**
 * Device names requested by CDI annotations. Each value is a comma list of fully-qualified names, split on `,`
 * without trimming, as the CDI library reads it; any entry that is not `vendor/class=name` fails the whole
 * request (an engine wrote it, so a bad one is a configuration error worth stopping for, never a guess).
 */
export function cdiDevicesFromAnnotations(
  annotations: Readonly<Record<string, string>>,
  prefixes: readonly string[] = DEFAULT_ANNOTATION_PREFIXES,
): AnnotationDevices {
  const keys = cdiAnnotationKeys(annotations, prefixes);
  const names = new Set<string>();
  for (const key of keys) {
    for (const item of annotations[key]!.split(',')) {
      if (!isCdiName(item)) {
        throw new NvrError('INPUT', `annotation ${quote(key)}: ${quote(item)} is not a fully-qualified CDI device name (vendor/class=name)`, {
          fix: `set the annotation to a comma list of names such as nvidia.com/gpu=0, or remove it`,
        });
      }
      names.add(item);
    }
  }
  return { names: [...names], keys };
}
