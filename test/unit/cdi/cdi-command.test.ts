import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createCdiCommand, outputFormat, type CdiDeps } from '../../../src/cli/cdi-command.js';
import { baseParser } from '../../../src/cli/yargs-base.js';
import { loadHostInventory } from '../../../src/host/inventory.js';
import { specProblem } from '../../../src/cdi/validate.js';
import { distBin, tempDir } from '../../helpers/dist.js';

let work: string;
let root: string;
beforeAll(async () => {
  work = tempDir('cdi-cmd');
  root = join(work, 'driver');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', root, '--gpus', '2']);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(args: string[], deps: Partial<CdiDeps> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const roots: string[] = [];
  let exitCode = 0;
  await baseParser(args, 'nvidia-ctk')
    .command(
      createCdiCommand({
        loadInventory: (r, d) => {
          roots.push(r);
          return loadHostInventory({ driverRoot: r, devRoot: d });
        },
        defaultDriverRoot: () => root,
        hookPath: () => '/opt/nvr/nvidia-runtime-hook',
        stdout: (t) => out.push(t),
        stderr: (t) => err.push(t),
        setExitCode: (c) => (exitCode = c),
        ...deps,
      }),
    )
    .demandCommand(1)
    .parseAsync();
  return { stdout: out.join(''), stderr: err.join(''), exitCode, roots };
}

describe('nvidia-ctk cdi generate', () => {
  it('prints YAML to stdout by default, using the configured driver root', async () => {
    const r = await run(['cdi', 'generate']);
    expect(r.roots).toEqual([root]);
    const spec = parseYaml(r.stdout);
    expect(specProblem(spec)).toBeUndefined();
    expect(spec.kind).toBe('nvidia.com/gpu');
    expect(spec.containerEdits.hooks[0].path).toBe('/opt/nvr/nvidia-runtime-hook');
  });

  it('writes --output atomically, JSON by extension, with flags applied', async () => {
    const file = join(work, 'out.json');
    const r = await run(['cdi', 'generate', '--output', file, '--driver-root', root, '--vendor', 'example.com', '--class', 'accel', '--device-name-strategy', 'uuid', '--device-name-strategy', 'type-index']);
    expect(r.stdout).toBe('');
    const spec = JSON.parse(readFileSync(file, 'utf8'));
    expect(spec.kind).toBe('example.com/accel');
    expect(spec.devices.map((d: { name: string }) => d.name)).toEqual([expect.stringMatching(/^GPU-/), 'gpu0', expect.stringMatching(/^GPU-/), 'gpu1', 'all']);
    // No digit-leading names, but hostPath under the mock root still needs 0.5.0.
    expect(spec.cdiVersion).toBe('0.5.0');
  });

  it('--format wins over the extension', async () => {
    const file = join(work, 'out2.json');
    await run(['cdi', 'generate', '--output', file, '--format', 'yaml']);
    expect(readFileSync(file, 'utf8')).toMatch(/^cdiVersion: 0\.5\.0\n/);
  });

  it('--dev-root is where nodes are looked up', async () => {
    await expect(run(['cdi', 'generate', '--dev-root', join(work, 'nowhere')])).rejects.toThrow(/device node \/dev\/nvidia0 under .*nowhere/);
  });

  it('rejects a bad strategy', async () => {
    await expect(run(['cdi', 'generate', '--device-name-strategy', 'serial'])).rejects.toThrow(/unknown device name strategy/);
  });

  it('outputFormat', () => {
    expect(outputFormat(undefined, undefined)).toBe('yaml');
    expect(outputFormat(undefined, '/etc/cdi/x.json')).toBe('json');
    expect(outputFormat(undefined, '/etc/cdi/x.yaml')).toBe('yaml');
    expect(outputFormat('json', '/etc/cdi/x.yaml')).toBe('json');
    expect(() => outputFormat('toml', undefined)).toThrow(/must be yaml or json/);
  });
});

describe('nvidia-ctk cdi list', () => {
  it('lists sorted names from every --spec-dir and reports broken files on stderr, exit 0', async () => {
    const a = join(work, 'list-a');
    const b = join(work, 'list-b');
    mkdirSync(a);
    mkdirSync(b);
    await run(['cdi', 'generate', '--output', join(a, 'nvidia.yaml')]);
    writeFileSync(join(b, 'broken.json'), '{"cdiVersion":"0.5.0","kind":"x.com/y","devices":[{"name":"z","containerEdits":{"env":["A=1"]},"extra":1}]}');
    const r = await run(['cdi', 'list', '--spec-dir', a, '--spec-dir', b]);
    const names = r.stdout.trim().split('\n');
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['nvidia.com/gpu=0', 'nvidia.com/gpu=1', 'nvidia.com/gpu=all']));
    expect(names).toHaveLength(5);
    expect(r.stderr).toBe(`${join(b, 'broken.json')}: devices[0].extra: unknown field\n`);
    expect(r.exitCode).toBe(0);
  });

  it('exit 1 when nothing valid is found but errors are', async () => {
    const c = join(work, 'list-c');
    mkdirSync(c);
    writeFileSync(join(c, 'x.yaml'), 'kind: [');
    const r = await run(['cdi', 'list', '--spec-dir', c]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/x\.yaml: not valid YAML/);
    expect(r.exitCode).toBe(1);
  });
});
