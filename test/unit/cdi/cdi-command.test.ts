import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createCdiCommand, outputFormat, type CdiDeps } from '../../../src/cli/cdi-command.js';
import { baseParser } from '../../../src/cli/yargs-base.js';
import { loadHostInventory } from '../../../src/host/inventory.js';
import { specProblem } from '../../../src/cdi/validate.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';
import type { NvrError } from '../../../src/errors.js';

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

describe('nvidia-ctk cdi list --json', () => {
  it('gives every device with its kind and file, the spec dirs, and the per-file errors (stdout only)', async () => {
    const a = join(work, 'json-a');
    const b = join(work, 'json-b');
    mkdirSync(a);
    mkdirSync(b);
    await run(['cdi', 'generate', '--output', join(a, 'nvidia.yaml')]);
    writeFileSync(join(b, 'broken.json'), '{"cdiVersion":"0.5.0","kind":"x.com/y","devices":[{"name":"z","containerEdits":{"env":["A=1"]},"extra":1}]}');
    const r = await run(['cdi', 'list', '--spec-dir', a, '--spec-dir', b, '--json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.specDirs).toEqual([a, b]);
    expect(out.devices.map((d: { name: string }) => d.name)).toEqual((await run(['cdi', 'list', '--spec-dir', a])).stdout.trim().split('\n'));
    expect(out.devices[0]).toEqual({ name: 'nvidia.com/gpu=0', kind: 'nvidia.com/gpu', file: join(a, 'nvidia.yaml') });
    expect(out.errors).toEqual([{ file: join(b, 'broken.json'), reason: 'devices[0].extra: unknown field' }]);
  });

  it('an empty listing is valid JSON; nothing valid but errors exits 1', async () => {
    const empty = await run(['cdi', 'list', '--spec-dir', join(work, 'nowhere'), '--json']);
    expect(JSON.parse(empty.stdout)).toEqual({ specDirs: [join(work, 'nowhere')], devices: [], errors: [] });
    expect(empty.exitCode).toBe(0);
    const c = join(work, 'json-c');
    mkdirSync(c);
    writeFileSync(join(c, 'x.yaml'), 'kind: [');
    const bad = await run(['cdi', 'list', '--spec-dir', c, '--json']);
    expect(JSON.parse(bad.stdout).errors).toEqual([{ file: join(c, 'x.yaml'), reason: expect.stringMatching(/^not valid YAML/) }]);
    expect(bad.exitCode).toBe(1);
  });
});

describe('nvidia-ctk cdi transform root', () => {
  const FIXTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'nvidia', 'nvidia-ctk-1.17.9-cdi-mock8.yaml');
  const MOCK_ROOT = '/var/lib/nvidia-runtime/mock-driver';

  it('reads --input, writes --output atomically (YAML by extension), moving host paths only', async () => {
    const out = join(work, 'transformed', 'nvidia.yaml');
    const r = await run(['cdi', 'transform', 'root', '--from', MOCK_ROOT, '--to', root, '--input', FIXTURE, '--output', out]);
    expect(r.stdout).toBe('');
    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain(MOCK_ROOT);
    expect(parseYaml(text)).toEqual(parseYaml(readFileSync(FIXTURE, 'utf8').split(MOCK_ROOT).join(root)));
    const listed = await run(['cdi', 'list', '--spec-dir', join(work, 'transformed'), '--json']);
    expect(JSON.parse(listed.stdout).errors).toEqual([]);
  });

  it('stdin to stdout by default (YAML); --format json; .json output is JSON; JSON input by extension', async () => {
    const fixture = readFileSync(FIXTURE, 'utf8');
    const reads: string[] = [];
    const readInput = (f: string) => {
      reads.push(f);
      return f === '-' ? fixture : readFileSync(f, 'utf8');
    };
    const y = await run(['cdi', 'transform', 'root', '--from', MOCK_ROOT, '--to', '/'], { readInput });
    expect(reads).toEqual(['-']);
    expect(parseYaml(y.stdout).containerEdits.deviceNodes[0]).toEqual({ hostPath: '/dev/nvidia-modeset', path: '/dev/nvidia-modeset' });
    const j = await run(['cdi', 'transform', 'root', '--from', MOCK_ROOT, '--to', '/', '--format', 'json'], { readInput });
    expect(JSON.parse(j.stdout)).toEqual(parseYaml(y.stdout));
    const jf = join(work, 'flat.json');
    await run(['cdi', 'transform', 'root', '--from', MOCK_ROOT, '--to', '/', '--output', jf], { readInput });
    expect(JSON.parse(readFileSync(jf, 'utf8'))).toEqual(parseYaml(y.stdout));
    const back = await run(['cdi', 'transform', 'root', '--from', '/dev', '--to', '/x/dev', '--input', jf], { readInput });
    expect(parseYaml(back.stdout).devices[0].containerEdits.deviceNodes[0]).toEqual({ hostPath: '/x/dev/nvidia0', path: '/dev/nvidia0' });
  });

  it('--relative-to container moves container paths', async () => {
    const r = await run(['cdi', 'transform', 'root', '--from', '/usr/lib/x86_64-linux-gnu', '--to', '/usr/lib64', '--relative-to', 'container', '--input', FIXTURE]);
    const spec = parseYaml(r.stdout);
    const libcuda = spec.containerEdits.mounts.find((m: { hostPath: string }) => m.hostPath.endsWith('/libcuda.so.550.54.15'));
    expect(libcuda).toMatchObject({ containerPath: '/usr/lib64/libcuda.so.550.54.15', hostPath: `${MOCK_ROOT}/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15` });
    const ldcache = spec.containerEdits.hooks.find((h: { args: string[] }) => h.args.includes('update-ldcache'));
    expect(ldcache.args).toEqual(['nvidia-cdi-hook', 'update-ldcache', '--folder', '/usr/lib64']);
  });

  it('errors are one line with a fix: missing flags, relative roots, bad --relative-to, unreadable or invalid input', async () => {
    const line = async (args: string[], deps: Partial<CdiDeps> = {}) => {
      try {
        await run(args, deps);
      } catch (e) {
        const msg = (e as NvrError).userMessage();
        expect(msg).not.toContain('\n');
        return msg;
      }
      throw new Error(`no error for ${args.join(' ')}`);
    };
    expect(await line(['cdi', 'transform', 'root', '--to', '/'])).toMatch(/^Missing required argument: from; see nvidia-ctk --help$/);
    expect(await line(['cdi', 'transform', 'root', '--from', 'run/nvidia', '--to', '/'])).toMatch(/^--from "run\/nvidia": must be an absolute path; give --from as an absolute directory/);
    expect(await line(['cdi', 'transform', 'root', '--from', '/a', '--to', '/', '--relative-to', 'pod'])).toBe('--relative-to pod: must be host or container; use --relative-to host (the default) or --relative-to container');
    expect(await line(['cdi', 'transform', 'root', '--from', '/a', '--to', '/', '--input', join(work, 'missing.yaml')])).toMatch(/^CDI spec .*missing\.yaml: cannot be read \(ENOENT\); check --input/);
    expect(await line(['cdi', 'transform', 'root', '--from', '/a', '--to', '/'], { readInput: () => 'kind: [' })).toMatch(/^CDI spec <stdin>: not valid YAML/);
    expect(await line(['cdi', 'transform', 'root', '--from', '/a', '--to', '/'], { readInput: () => '{"cdiVersion":"0.5.0","kind":"x.com/y","devices":[]}' })).toMatch(/^CDI spec <stdin>: .*; give a valid CDI spec as --input/);
    expect(await line(['cdi', 'transform'])).toMatch(/cdi transform needs a subcommand: root/);
    expect(await line(['cdi', 'transform', 'root', '--to', '/', '--from'])).toMatch(/^--from "": must be an absolute path/);
    expect(await line(['cdi', 'transform', 'root', '--from', '/a', '--to', '/', '--input', ''], { readInput: () => '' })).toBe('--input is empty; give the spec file to read, or - for stdin');
  });
});
