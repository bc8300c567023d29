import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { createMockDriverCommand, type MockDriverDeps } from '../../../src/cli/mock-driver-command.js';
import { NvrError } from '../../../src/errors.js';
import { generateTopology } from '../../../src/mock/topology.js';
import type { MockTopology } from '../../../src/mock/topology-types.js';

const ARTIFACTS = { nvmlLibrary: '/a/nvml.so', stubLibrary: '/a/stub.so', nvidiaSmi: '/a/smi' };

/** Runs `nvidia-ctk <args>` with recording deps; returns what the writer got and what was printed. */
async function run(args: string[]): Promise<{ root?: string; topology?: MockTopology; out: string }> {
  const seen: { root?: string; topology?: MockTopology; out: string } = { out: '' };
  const deps: MockDriverDeps = {
    artifacts: () => ARTIFACTS,
    write: async (root, topology, artifacts) => {
      expect(artifacts).toBe(ARTIFACTS);
      seen.root = root;
      seen.topology = topology;
    },
    stdout: (t) => {
      seen.out += t;
    },
  };
  await yargs(args)
    .command(createMockDriverCommand(deps))
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  return seen;
}

describe('nvidia-ctk mock-driver', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nvmock-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generates a topology from the flags and prints a summary', async () => {
    const r = await run(['mock-driver', '--root', '/tmp/x', '--gpus', '2', '--model', 'NVIDIA A100-SXM4-40GB', '--mig', '--driver-version', '535.104.05', '--cuda-version', '12.2']);
    expect(r.root).toBe('/tmp/x');
    expect(r.topology).toEqual(generateTopology({ gpus: 2, model: 'NVIDIA A100-SXM4-40GB', mig: true, driverVersion: '535.104.05', cudaVersion: '12.2' }));
    expect(r.out).toMatch(/^Mock NVIDIA driver 535\.104\.05 \(CUDA 12\.2\) written to \/tmp\/x: 2 GPUs \(NVIDIA A100-SXM4-40GB\)/);
    expect(r.out).toContain('MIG is enabled on 2 of them (6 MIG devices)');
    expect(r.out.trimEnd().split('\n')).toHaveLength(1);
  });

  it('defaults to one H100', async () => {
    const r = await run(['mock-driver', '--root', '/tmp/y']);
    expect(r.topology).toEqual(generateTopology());
    expect(r.out).toContain('1 GPU (NVIDIA H100 80GB HBM3)');
  });

  it('reads --topology, with version overrides', async () => {
    const file = join(dir, 't.json');
    const t = generateTopology({ gpus: 3 });
    t.gpus[2]!.minor = 9;
    writeFileSync(file, JSON.stringify(t));
    expect((await run(['mock-driver', '--root', '/r', '--topology', file])).topology).toEqual(t);
    const r = await run(['mock-driver', '--root', '/r', '--topology', file, '--driver-version', '560.1']);
    expect(r.topology!.driverVersion).toBe('560.1');
    expect(r.out).toContain('minors 0,1,9');
  });

  it('rejects --topology together with --gpus, --model or --mig', async () => {
    const file = join(dir, 't.json');
    writeFileSync(file, JSON.stringify(generateTopology()));
    for (const extra of [['--gpus', '2'], ['--model', 'NVIDIA L4'], ['--mig']]) {
      await expect(run(['mock-driver', '--root', '/r', '--topology', file, ...extra])).rejects.toThrow(/mutually exclusive/);
    }
  });

  it('--graphics, --gds, --mofed, --nvswitch and --gdrcopy add features, in canonical order', async () => {
    const r = await run(['mock-driver', '--root', '/r', '--gpus', '2', '--gdrcopy', '--graphics', '--mofed']);
    expect(r.topology).toEqual(generateTopology({ gpus: 2, features: ['graphics', 'mofed', 'gdrcopy'] }));
    expect(r.topology!.features).toEqual(['graphics', 'mofed', 'gdrcopy']);
    expect(r.out).toContain('minors 0,1. Features: graphics, mofed, gdrcopy. Use /r as the driver root');
    const all = await run(['mock-driver', '--root', '/r', '--graphics', '--gds', '--mofed', '--nvswitch', '--gdrcopy']);
    expect(all.topology!.features).toEqual(['graphics', 'gds', 'mofed', 'nvswitch', 'gdrcopy']);
  });

  it('without feature flags the topology has no features field and the summary does not mention any', async () => {
    const r = await run(['mock-driver', '--root', '/r', '--gpus', '2', '--no-graphics']);
    expect('features' in r.topology!).toBe(false);
    expect(r.out).not.toContain('Features');
  });

  it('feature flags with --topology merge into the file\'s list', async () => {
    const file = join(dir, 'features.json');
    writeFileSync(file, JSON.stringify({ ...generateTopology({ gpus: 2 }), features: ['gdrcopy'] }));
    expect((await run(['mock-driver', '--root', '/r', '--topology', file])).topology!.features).toEqual(['gdrcopy']);
    const r = await run(['mock-driver', '--root', '/r', '--topology', file, '--graphics', '--gdrcopy']);
    expect(r.topology!.features).toEqual(['graphics', 'gdrcopy']);
    expect(r.out).toContain('Features: graphics, gdrcopy.');
    // --graphics revalidates: a GPU on the BMC display's bus is refused, naming the flags.
    const t = generateTopology({ gpus: 2 });
    t.gpus[0]!.pciBusId = '00000000:03:00.0';
    writeFileSync(file, JSON.stringify(t));
    await expect(run(['mock-driver', '--root', '/r', '--topology', file])).resolves.toBeDefined();
    await expect(run(['mock-driver', '--root', '/r', '--topology', file, '--graphics'])).rejects.toThrow(
      `topology file ${file} with the command-line flags: /gpus/0/pciBusId: 00000000:03:00.0 is the mock's BMC display`,
    );
  });

  it('requires --root and passes typed errors through', async () => {
    await expect(run(['mock-driver', '--gpus', '2'])).rejects.toThrow(/root/);
    await expect(run(['mock-driver', '--root', '/r', '--gpus', '0'])).rejects.toThrow(NvrError);
    await expect(run(['mock-driver', '--root', '/r', '--gpus', 'many'])).rejects.toThrow(/--gpus/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"driverVersion": "550.54.15", ');
    await expect(run(['mock-driver', '--root', '/r', '--topology', bad])).rejects.toThrow(`topology file ${bad}: invalid JSON`);
  });
});
