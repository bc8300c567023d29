/**
 * The mock's persistence mode (what the doctor's persistence lines read): the topology field becomes a `persistence`
 * record only when set, and the fake NVML answers nvmlDeviceGetPersistenceMode from it through the runtime's addon.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateTopology, parseTopologyJson, serializeTopologyText } from '../../../src/mock/topology.js';

const RELEASE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../build/Release');

test('the record is written only for GPUs whose topology sets persistenceMode', () => {
  const t = generateTopology({ gpus: 2 });
  expect(serializeTopologyText(t)).not.toContain('persistence');
  t.gpus[1]!.persistenceMode = false;
  t.gpus[0]!.persistenceMode = true;
  const lines = serializeTopologyText(t).split('\n');
  expect(lines).toContain('persistence\t0\t1');
  expect(lines).toContain('persistence\t1\t0');
  expect(parseTopologyJson(JSON.stringify(t), 't.json').gpus[1]!.persistenceMode).toBe(false);
  expect(() => parseTopologyJson(JSON.stringify({ ...t, gpus: [{ ...t.gpus[0], persistenceMode: 'off' }] }), 't.json')).toThrow(/persistenceMode/);
});

test('the fake NVML answers it through the addon; without a record the field is absent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvr-doctor-pm-'));
  try {
    mkdirSync(join(dir, 'dev'));
    for (const m of [0, 1]) await execa('mknod', [join(dir, 'dev', `nvidia${m}`), 'c', '195', String(m)]);
    const t = generateTopology({ gpus: 3 });
    t.gpus[0]!.persistenceMode = true;
    t.gpus[1]!.persistenceMode = false;
    writeFileSync(join(dir, 'topology.txt'), serializeTopologyText(t));
    // GPU 2 has no node, so NVML lists two GPUs; the third's record is harmless.
    const child = `const a = require(process.argv[1]); process.stdout.write(JSON.stringify(a.nvmlQuery(process.argv[2]).devices.map((d) => d.persistenceMode ?? null)));`;
    const run = async (file: string) =>
      JSON.parse((await execa(process.execPath, ['-e', child, join(RELEASE, 'nvidia_runtime.node'), join(RELEASE, 'libnvidia-ml-mock.so')], { env: { NVIDIA_MOCK_ROOT: dir, NVIDIA_MOCK_TOPOLOGY: file } })).stdout);
    expect(await run(join(dir, 'topology.txt'))).toEqual([1, 0]);
    writeFileSync(join(dir, 'plain.txt'), serializeTopologyText(generateTopology({ gpus: 2 })));
    expect(await run(join(dir, 'plain.txt'))).toEqual([null, null]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
