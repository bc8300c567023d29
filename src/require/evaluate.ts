/**
 * Check NVIDIA_REQUIRE_* predicates against the host (FACTS §1.8). Every predicate must hold (AND);
 * within one, the first OR-group whose terms all hold satisfies it, and the groups after it are not read (an
 * invalid term in a group that is reached is an error). Checks run once per selected device
 * (GPUs and the parents of MIG devices), or once with no device; a value the host cannot report passes,
 * as in libnvidia-container.
 */
import { NvrError } from '../errors.js';
import { DOTTED_NUMBER, compareVersions, parseRequirement, parseTerm } from './grammar.js';
import type { Requirement, RequireTerm } from './grammar.js';

export interface RequirementDevice {
  computeCapability?: string; // "8.0" — compared by `arch`
  brand?: string; // "Tesla" — compared by `brand`
  label?: string; // "GPU 0", used in messages
}

export interface RequirementHost {
  cudaVersion?: string; // "12.4"
  driverVersion?: string; // "550.54.15"
  devices: RequirementDevice[];
}

export interface UnmetRequirement {
  requirement: Requirement;
  device?: RequirementDevice;
}

function hostValue(term: RequireTerm, host: RequirementHost, device: RequirementDevice | undefined): string | undefined {
  switch (term.key) {
    case 'cuda':
      return host.cudaVersion;
    case 'driver':
      return host.driverVersion;
    case 'arch':
      return device?.computeCapability;
    case 'brand':
      return device?.brand;
  }
}

function holds(cmp: number, op: RequireTerm['op']): boolean {
  switch (op) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
  }
}

/** Whether one term holds. A value the host does not report passes. */
export function evaluateTerm(term: RequireTerm, host: RequirementHost, device?: RequirementDevice): boolean {
  const actual = hostValue(term, host, device)?.trim();
  if (actual === undefined || actual === '') return true;
  if (term.key === 'brand') return holds(actual.toLowerCase() === term.value.toLowerCase() ? 0 : 1, term.op);
  if (!DOTTED_NUMBER.test(actual)) {
    // A host value we cannot compare must not silently pass or fail: say so.
    throw new NvrError('REQUIREMENT', `cannot check ${term.text}: the host reports ${term.key} ${JSON.stringify(actual)}, not a dotted number`, {
      fix: 'set NVIDIA_DISABLE_REQUIRE=true to skip the check',
    });
  }
  return holds(compareVersions(actual, term.value), term.op);
}

/** Whether a whole predicate holds: blank holds; otherwise the first OR-group (in order) with every term holding. */
export function evaluateRequirement(req: Requirement, host: RequirementHost, device?: RequirementDevice): boolean {
  if (req.groups.length === 0) return true;
  for (const group of req.groups) {
    // Every term of a reached group is read and checked, as libnvidia-container does; then the next group.
    const results = group.map((t) => evaluateTerm(parseTerm(t, req.source, req.text), host, device));
    if (results.every(Boolean)) return true;
  }
  return false;
}

function toRequirement(expr: string | Requirement): Requirement {
  return typeof expr === 'string' ? parseRequirement(expr) : expr;
}

/** The first predicate that does not hold (with the device it failed on), or undefined when all hold. */
export function findUnmetRequirement(
  exprs: readonly (string | Requirement)[],
  host: RequirementHost,
): UnmetRequirement | undefined {
  const reqs = exprs.map(toRequirement);
  const devices: (RequirementDevice | undefined)[] = host.devices.length > 0 ? host.devices : [undefined];
  for (const device of devices) {
    for (const requirement of reqs) {
      if (!evaluateRequirement(requirement, host, device)) return { requirement, device };
    }
  }
  return undefined;
}

/** What the host has, in the terms the predicate uses: "host CUDA 12.4, driver 550.54.15[, GPU 0: arch 8.0, brand Tesla]". */
export function describeHost(req: Requirement, host: RequirementHost, device?: RequirementDevice): string {
  const parts = [`host CUDA ${host.cudaVersion ?? 'unknown'}`, `driver ${host.driverVersion ?? 'unknown'}`];
  const keys = new Set(req.groups.flat().map((t) => t.split(/[<>=!]/)[0]!.toLowerCase()));
  if (device && (keys.has('arch') || keys.has('brand'))) {
    const facts: string[] = [];
    if (keys.has('arch')) facts.push(`arch ${device.computeCapability ?? 'unknown'}`);
    if (keys.has('brand')) facts.push(`brand ${device.brand ?? 'unknown'}`);
    parts.push(`${device.label ?? 'GPU'}: ${facts.join(', ')}`);
  }
  return parts.join(', ');
}

/**
 * Throw NvrError('REQUIREMENT') naming the first unmet predicate and what the host has; invalid
 * predicates given as strings throw NvrError('INPUT').
 */
export function evaluateRequirements(exprs: readonly (string | Requirement)[], host: RequirementHost): void {
  const unmet = findUnmetRequirement(exprs, host);
  if (!unmet) return;
  const { requirement, device } = unmet;
  const aboutDriver = requirement.groups.flat().some((t) => /^(cuda|driver)[<>=!]/i.test(t));
  throw new NvrError(
    'REQUIREMENT',
    `unsatisfied condition: ${requirement.text} (${describeHost(requirement, host, device)})`,
    {
      fix: aboutDriver
        ? 'update the driver or use an image built for an older CUDA; set NVIDIA_DISABLE_REQUIRE=true to skip the check'
        : 'select GPUs that meet it; set NVIDIA_DISABLE_REQUIRE=true to skip the check',
    },
  );
}
