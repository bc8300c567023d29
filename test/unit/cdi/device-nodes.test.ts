/**
 * CDI device nodes that name only their path, as NVIDIA's `nvidia-ctk cdi generate` writes them: filled from the
 * host node. Checked on a table, and on the exact spec NVIDIA's generator wrote for our default mock root
 * (../shared/fixtures), rewritten to a fresh mock root: it loads, and a device resolves to the same nodes, with the
 * same numbers, as our own generated spec gives.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fillDeviceNodes, type HostNodeInfo } from '../../../src/cdi/device-nodes.js';
import { generateCdiSpec } from '../../../src/cdi/generate.js';
import { loadCdiRegistry, resolveCdiDevices } from '../../../src/cdi/registry.js';
import { formatSpec } from '../../../src/cli/cdi-command.js';
import { loadHostInventory } from '../../../src/host/inventory.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

const FIXTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'nvidia', 'nvidia-ctk-1.17.9-cdi-mock8.yaml');
const FIXTURE_ROOT = '/var/lib/nvidia-runtime/mock-driver';

describe('fillDeviceNodes', () => {
  const host: Record<string, HostNodeInfo | string> = {
    '/dev/nvidia0': { type: 'c', major: 195, minor: 0 },
    '/h/dev/nvidia1': { type: 'c', major: 195, minor: 1 },
    '/dev/fifo': { type: 'p', major: 0, minor: 0 },
    '/dev/sda': { type: 'b', major: 8, minor: 0 },
    '/etc/passwd': 'is not a device node',
  };
  const lookup = (p: string) => host[p] ?? 'cannot be read (ENOENT)';

  test.each([
    [{ path: '/dev/nvidia0' }, { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }],
    [{ path: '/dev/nvidia1', hostPath: '/h/dev/nvidia1' }, { path: '/dev/nvidia1', hostPath: '/h/dev/nvidia1', type: 'c', major: 195, minor: 1 }],
    [{ path: '/dev/nvidia0', type: 'c' }, { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }],
    [{ path: '/dev/nvidia0', type: 'u' }, { path: '/dev/nvidia0', type: 'u', major: 195, minor: 0 }],
    [{ path: '/dev/fifo' }, { path: '/dev/fifo', type: 'p' }],
    [{ path: '/x', type: 'c', major: 1, minor: 3 }, { path: '/x', type: 'c', major: 1, minor: 3 }], // complete: untouched
  ])('%j → %j', (node, want) => {
    expect(fillDeviceNodes({ deviceNodes: [node] }, lookup).deviceNodes).toEqual([want]);
  });

  test.each([
    [{ path: '/dev/missing' }, 'CDI device node /dev/missing: the host node /dev/missing cannot be read (ENOENT)'],
    [{ path: '/etc/passwd' }, 'CDI device node /etc/passwd: the host node /etc/passwd is not a device node'],
    [{ path: '/dev/sda', type: 'c' }, 'CDI device node /dev/sda: the host node /dev/sda is of type b, not c'],
  ])('%j is refused', (node, message) => {
    expect(() => fillDeviceNodes({ deviceNodes: [node] }, lookup)).toThrow(message);
  });
});

describe("NVIDIA's own generated spec", () => {
  let work: string;
  let root: string;
  beforeAll(async () => {
    work = tempDir('nvidia-spec');
    root = join(work, 'driver');
    await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', root, '--gpus', '8']);
    for (const d of ['theirs', 'ours']) mkdirSync(join(work, d));
    writeFileSync(join(work, 'theirs', 'nvidia.yaml'), readFileSync(FIXTURE, 'utf8').split(FIXTURE_ROOT).join(root));
    writeFileSync(join(work, 'ours', 'nvidia.yaml'), formatSpec(generateCdiSpec(loadHostInventory({ driverRoot: root }), { hookPath: '/hook' }), 'yaml'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('loads without errors and resolves every GPU to the host nodes our own spec names', () => {
    const theirs = loadCdiRegistry([join(work, 'theirs')]);
    const ours = loadCdiRegistry([join(work, 'ours')]);
    expect(theirs.errors).toEqual([]);
    const nodes = (reg: typeof theirs, name: string) =>
      resolveCdiDevices(reg, [name]).deviceNodes!.map((n) => `${n.path} ${n.type} ${n.major}:${n.minor}`).sort();
    for (let i = 0; i < 8; i++) expect(nodes(theirs, `nvidia.com/gpu=${i}`)).toEqual(nodes(ours, `nvidia.com/gpu=${i}`));
    expect(nodes(theirs, 'nvidia.com/gpu=all')).toEqual(nodes(ours, 'nvidia.com/gpu=all'));
  });
});
