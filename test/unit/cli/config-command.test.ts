/** `nvidia-ctk config` (src/cli/config-command.ts): --set parsing, the line editor, validation, and the command. */
import { execa } from 'execa';
import fc from 'fast-check';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { applyConfigSets, configKeys, createConfigCommand, editTomlText, parseSetFlag, renderTomlValue, type ConfigDeps, type ConfigSet, type SetValue } from '../../../src/cli/config-command.js';
import { baseParser } from '../../../src/cli/yargs-base.js';
import { renderDefaultConfigToml } from '../../../src/config/defaults.js';
import { parseConfig } from '../../../src/config/load.js';
import { CONFIG_SCHEMA } from '../../../src/config/schema.js';
import { NvrError } from '../../../src/errors.js';
import { distBin, tempDir } from '../../helpers/dist.js';

const DEFAULTS = renderDefaultConfigToml();
const FILE = '/etc/nvidia-container-runtime/config.toml';

/** The one-line message a thrown NvrError shows the user. */
function userLine(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    const line = e.userMessage();
    expect(line).not.toContain('\n');
    return line;
  }
  throw new Error('did not throw');
}

describe('parseSetFlag', () => {
  it('booleans: KEY alone is true; Go ParseBool spellings; anything else refused', () => {
    expect(parseSetFlag('disable-require').value).toBe(true);
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(parseSetFlag(`disable-require=${t}`).value).toBe(true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(parseSetFlag(`nvidia-container-cli.load-kmods=${f}`).value).toBe(false);
    expect(userLine(() => parseSetFlag('disable-require=yes'))).toBe('--set disable-require=yes: disable-require is a boolean, not "yes"; use disable-require=true or disable-require=false');
  });

  it('strings are verbatim (= : , included); a string key needs a value', () => {
    expect(parseSetFlag('nvidia-container-cli.root=/run/nvidia/driver')).toEqual({
      flag: 'nvidia-container-cli.root=/run/nvidia/driver',
      key: 'nvidia-container-cli.root',
      path: ['nvidia-container-cli', 'root'],
      kind: 'string',
      value: '/run/nvidia/driver',
    });
    expect(parseSetFlag('swarm-resource=A=1,B:2').value).toBe('A=1,B:2');
    expect(parseSetFlag('swarm-resource=').value).toBe('');
    expect(parseSetFlag('nvidia-container-cli.user=nil').value).toBe('nil');
    expect(userLine(() => parseSetFlag('swarm-resource'))).toMatch(/^--set swarm-resource: expected swarm-resource=VALUE; give a value/);
  });

  it('lists split at : and , (or only at --set-list-separator); empty is the empty list', () => {
    expect(parseSetFlag('nvidia-container-runtime.runtimes=runc,crun').value).toEqual(['runc', 'crun']);
    expect(parseSetFlag('nvidia-container-runtime.runtimes=runc:crun').value).toEqual(['runc', 'crun']);
    expect(parseSetFlag('nvidia-container-runtime.modes.cdi.spec-dirs=').value).toEqual([]);
    expect(parseSetFlag('nvidia-container-cli.environment=A=1,B=2').value).toEqual(['A=1', 'B=2']);
    expect(parseSetFlag('nvidia-container-cli.environment=PATH=/a:/b;X=1', ';').value).toEqual(['PATH=/a:/b', 'X=1']);
    expect(userLine(() => parseSetFlag('nvidia-container-runtime.runtimes=a', ''))).toMatch(/^--set-list-separator must not be empty/);
  });

  it('features.X=nil removes the key (the toolkit pointer fields)', () => {
    expect(parseSetFlag('features.allow-ldconfig-from-container=nil').value).toBeUndefined();
    expect(parseSetFlag('features.allow-ldconfig-from-container').value).toBe(true);
  });

  it('unknown keys: one line naming the key, a near miss, and the known keys of its table', () => {
    expect(userLine(() => parseSetFlag('nvidia-container-cli.rooot=/x'))).toBe(
      '--set nvidia-container-cli.rooot=/x: unknown config key "nvidia-container-cli.rooot"; did you mean nvidia-container-cli.root? ' +
        'known keys under nvidia-container-cli: root, path, environment, debug, ldcache, load-kmods, no-cgroups, user, ldconfig, no-pivot, driver-options',
    );
    const top = userLine(() => parseSetFlag('bogus=1'));
    expect(top).toMatch(/^--set bogus=1: unknown config key "bogus"; known keys: disable-require, swarm-resource, /);
    expect(top).toContain('nvidia-container-runtime.modes.cdi.spec-dirs');
    // HEAD-only keys the runtime does not implement are refused, not silently written.
    expect(userLine(() => parseSetFlag('nvidia-container-runtime.modes.jit-cdi.nvcdi-feature-flags=x'))).toMatch(/unknown config key .*known keys under nvidia-container-runtime.modes: cdi.spec-dirs/);
    expect(userLine(() => parseSetFlag('features=true'))).toMatch(/^--set features=true: "features" is a table, not a value; set one of its keys: features\.allow-cuda-compat-libs-from-container, /);
    expect(userLine(() => parseSetFlag('=x'))).toMatch(/^--set =x: unknown config key ""/);
  });

  it('every schema key is settable, with the schema type', () => {
    const keys = [...configKeys().values()];
    expect(keys.map((k) => k.key)).toEqual(expect.arrayContaining(['nvidia-container-runtime.mode', 'nvidia-container-cli.root', 'features.no-additional-gids-for-device-nodes', 'nvidia-ctk.path']));
    expect(configKeys().get('nvidia-container-runtime.runtimes')!.kind).toBe('string[]');
    expect(configKeys().get('nvidia-container-cli.no-pivot')!.kind).toBe('boolean');
    expect(configKeys().get('nvidia-container-runtime.log-level')!.kind).toBe('string');
  });
});

// Arbitraries: a valid value for each key, from the schema itself.
type Schema = Record<string, unknown>;
function subSchema(path: readonly string[]): Schema {
  let s: Schema = CONFIG_SCHEMA;
  for (const p of path) s = (s.properties as Record<string, Schema>)[p];
  return s;
}
const anyText = fc.string({ unit: 'binary', maxLength: 12 });
function validValue(path: readonly string[]): fc.Arbitrary<SetValue> {
  const s = subSchema(path);
  if (s.type === 'boolean') return fc.boolean();
  if (s.type === 'array') return fc.array(anyText, { maxLength: 4 });
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as string[]));
  if (typeof s.pattern === 'string') return fc.stringMatching(new RegExp(s.pattern as string));
  return anyText;
}
const keyArb = fc.constantFrom(...configKeys().keys());
const setArb: fc.Arbitrary<ConfigSet> = keyArb.chain((key) => {
  const k = configKeys().get(key)!;
  const value: fc.Arbitrary<SetValue | undefined> = k.removable ? fc.option(validValue(k.path), { nil: undefined }) : validValue(k.path);
  return value.map((v) => ({ flag: `${key}=…`, key, path: [...k.path], kind: k.kind, value: v }));
});

describe('parseSetFlag properties', () => {
  it('KEY=<value rendered as on a command line> parses back to the value, for every key and type', () => {
    const sep = fc.constantFrom(undefined, ';', '|');
    fc.assert(
      fc.property(keyArb, sep, fc.boolean(), (key, separator, goSpelling) => {
        const k = configKeys().get(key)!;
        const arb: fc.Arbitrary<SetValue> =
          k.kind === 'string[]'
            ? fc
                .array(fc.string({ unit: 'binary', maxLength: 8 }).filter((e) => !(separator === undefined ? /[:,]/ : new RegExp(`\\${separator}`)).test(e)), { maxLength: 4 })
                .filter((a) => !(a.length === 1 && a[0] === ''))
            : validValue(k.path);
        fc.assert(
          fc.property(arb, (value) => {
            const text = Array.isArray(value) ? value.join(separator ?? (goSpelling ? ':' : ',')) : typeof value === 'boolean' && goSpelling ? (value ? 'T' : '0') : String(value);
            const set = parseSetFlag(`${key}=${text}`, separator);
            expect(set.key).toBe(key);
            expect(set.value).toEqual(value);
          }),
          { numRuns: 10 },
        );
      }),
      { numRuns: 100 },
    );
  });

  it('any key that is not in the schema is refused with a one-line INPUT error naming it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }).filter((k) => !k.includes('=') && !configKeys().has(k)), fc.string(), (key, value) => {
        let err: unknown;
        try {
          parseSetFlag(`${key}=${value}`);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(NvrError);
        expect((err as NvrError).code).toBe('INPUT');
        expect((err as NvrError).message).toContain(JSON.stringify(key));
      }),
    );
  });
});

describe('editTomlText', () => {
  it('replaces a value in place, keeping the trailing comment and the key as written', () => {
    const text = '[nvidia-container-cli]\n  "root" = "" # driver root\nuser=""\n';
    expect(editTomlText(text, ['nvidia-container-cli', 'root'], '/run/nvidia/driver')).toBe('[nvidia-container-cli]\n  "root" = "/run/nvidia/driver" # driver root\nuser=""\n');
    expect(editTomlText(text, ['nvidia-container-cli', 'user'], 'a#b')).toBe('[nvidia-container-cli]\n  "root" = "" # driver root\nuser="a#b"\n');
  });

  it('a multi-line array is replaced whole; a # inside a string is not a comment', () => {
    const text = '[nvidia-container-runtime]\nruntimes = [\n  "a#1", # first\n  "b",\n] # end\nmode = "auto"\n';
    expect(editTomlText(text, ['nvidia-container-runtime', 'runtimes'], ['runc'])).toBe('[nvidia-container-runtime]\nruntimes = ["runc"] # end\nmode = "auto"\n');
  });

  it('a missing key goes after its commented example, else after the last key of its table, else right under the header', () => {
    expect(editTomlText('[features]\n#a = 1\n#allow-ldconfig-from-container = false\n#b = 2\n', ['features', 'allow-ldconfig-from-container'], true)).toBe(
      '[features]\n#a = 1\n#allow-ldconfig-from-container = false\nallow-ldconfig-from-container = true\n#b = 2\n',
    );
    expect(editTomlText('[nvidia-ctk]\npath = "x"\n\n# next\n[features]\n', ['nvidia-ctk', 'path'], 'y')).toBe('[nvidia-ctk]\npath = "y"\n\n# next\n[features]\n');
    expect(editTomlText('[nvidia-container-runtime-hook]\npath = "x"\n\n[features]\n', ['nvidia-container-runtime-hook', 'skip-mode-detection'], true)).toBe(
      '[nvidia-container-runtime-hook]\npath = "x"\nskip-mode-detection = true\n\n[features]\n',
    );
    expect(editTomlText('[features]\n', ['features', 'ignore-imex-channel-requests'], false)).toBe('[features]\nignore-imex-channel-requests = false\n');
  });

  it('a missing table is appended; a top-level key goes before the first table and its comment', () => {
    expect(editTomlText('# hello\ndisable-require = true\n', ['nvidia-container-runtime', 'modes', 'cdi', 'default-kind'], 'x.com/y')).toBe(
      '# hello\ndisable-require = true\n\n[nvidia-container-runtime.modes.cdi]\ndefault-kind = "x.com/y"\n',
    );
    expect(editTomlText('', ['nvidia-ctk', 'path'], 'p')).toBe('[nvidia-ctk]\npath = "p"\n');
    expect(editTomlText('# cli\n[nvidia-container-cli]\nroot = ""\n', ['disable-require'], true)).toBe('disable-require = true\n\n# cli\n[nvidia-container-cli]\nroot = ""\n');
    expect(editTomlText('disable-require = false', ['swarm-resource'], 'X')).toBe('disable-require = false\nswarm-resource = "X"');
  });

  it('removes a key; removing an absent key changes nothing', () => {
    expect(editTomlText('[features]\nallow-ldconfig-from-container = true\nx = 1\n', ['features', 'allow-ldconfig-from-container'], undefined)).toBe('[features]\nx = 1\n');
    expect(editTomlText('[features]\n', ['features', 'allow-ldconfig-from-container'], undefined)).toBe('[features]\n');
  });

  it('renders values as TOML that parses back (control characters and DEL escaped)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.boolean(), anyText, fc.array(anyText, { maxLength: 3 })), (v) => {
        expect((parseToml(`v = ${renderTomlValue(v)}`) as { v: unknown }).v).toEqual(v);
      }),
    );
  });
});

function expectedDocument(text: string, sets: readonly ConfigSet[]): Record<string, unknown> {
  const doc = parseToml(text) as Record<string, unknown>;
  for (const s of sets) {
    let cur: Record<string, unknown> | undefined = doc;
    for (const p of s.path.slice(0, -1)) cur = s.value === undefined ? (cur?.[p] as Record<string, unknown> | undefined) : ((cur![p] ??= {}) as Record<string, unknown>);
    const leaf = s.path[s.path.length - 1];
    if (s.value === undefined) delete cur?.[leaf];
    else cur![leaf] = s.value;
  }
  return doc;
}

const commentLines = (text: string) => text.split('\n').filter((l) => l.trimStart().startsWith('#'));

describe('applyConfigSets', () => {
  it('on the default file: any valid sets give exactly the expected document, by line edits, every comment kept, idempotent', () => {
    fc.assert(
      fc.property(fc.array(setArb, { maxLength: 6 }), (sets) => {
        const r = applyConfigSets(DEFAULTS, FILE, sets);
        expect(r.reserialised).toBe(false);
        expect(parseToml(r.text)).toEqual(expectedDocument(DEFAULTS, sets));
        expect(commentLines(r.text)).toEqual(commentLines(DEFAULTS));
        expect(applyConfigSets(r.text, FILE, sets).text).toBe(r.text);
        parseConfig(r.text, FILE); // what the runtime loads
      }),
      { numRuns: 300 },
    );
  });

  it('on files in the layout smol-toml writes (headers per table, nested tables): line edits too, never a re-serialisation', () => {
    fc.assert(
      fc.property(fc.array(setArb, { maxLength: 8 }), fc.array(setArb, { minLength: 1, maxLength: 6 }), (initial, sets) => {
        const text = stringifyToml(expectedDocument('', initial));
        const r = applyConfigSets(text, FILE, sets);
        expect(parseToml(r.text)).toEqual(expectedDocument(text, sets));
        expect(r.reserialised).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('no sets: the file is returned byte for byte (unknown keys warned, kept)', () => {
    const text = '# mine\n[nvidia-container-cli]\nroot = "/drv"  # the driver\nfancy = 1\n';
    const r = applyConfigSets(text, FILE, []);
    expect(r).toEqual({ text, reserialised: false, warnings: ['unknown key "nvidia-container-cli.fancy" ignored'] });
    expect(applyConfigSets(text, FILE, [parseSetFlag('nvidia-container-cli.root=/drv')]).text).toBe(text); // same value: untouched
  });

  it('a layout a line edit cannot express (a table made by dotted keys) is re-serialised, correctly', () => {
    const text = '# comment\n[nvidia-container-runtime]\nmodes.cdi.spec-dirs = ["/a"]\n';
    const sets = [parseSetFlag('nvidia-container-runtime.modes.cdi.default-kind=x.com/y')];
    const r = applyConfigSets(text, FILE, sets);
    expect(r.reserialised).toBe(true);
    expect(parseToml(r.text)).toEqual(expectedDocument(text, sets));
  });

  it('an invalid value names the --set; a bad value already in the file names the file; invalid TOML names the line', () => {
    expect(userLine(() => applyConfigSets(DEFAULTS, FILE, [parseSetFlag('nvidia-container-runtime.mode=jit-cdi')]))).toBe(
      '--set nvidia-container-runtime.mode=jit-cdi: nvidia-container-runtime.mode must be one of auto, legacy, cdi, csv (got "jit-cdi"); see `nvidia-ctk config default` and docs/configuration.md for the values each key takes',
    );
    expect(userLine(() => applyConfigSets(DEFAULTS, FILE, [parseSetFlag('nvidia-container-cli.root=run/nvidia')]))).toMatch(/nvidia-container-cli\.root must be an absolute path \(or empty\) \(got "run\/nvidia"\)/);
    expect(userLine(() => applyConfigSets('[nvidia-container-runtime]\nmode = "x"\n', FILE, [parseSetFlag('disable-require')]))).toMatch(
      new RegExp(`^config\\.toml ${FILE}: nvidia-container-runtime\\.mode must be one of`),
    );
    // ... unless the --set is what fixes it.
    expect(applyConfigSets('[nvidia-container-runtime]\nmode = "x"\n', FILE, [parseSetFlag('nvidia-container-runtime.mode=cdi')]).text).toBe('[nvidia-container-runtime]\nmode = "cdi"\n');
    expect(userLine(() => applyConfigSets('a = [', FILE, []))).toMatch(new RegExp(`^config\\.toml ${FILE}: invalid TOML: .* at line 1`));
    expect(userLine(() => applyConfigSets('nvidia-container-cli = 1\n', FILE, [parseSetFlag('nvidia-container-cli.root=/x')]))).toMatch(/nvidia-container-cli is not a table, so nvidia-container-cli\.root cannot be set/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The command, through yargs, with an in-memory file system.

async function run(args: string[], files: Map<string, string> = new Map(), env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const writes: string[] = [];
  const deps: ConfigDeps = {
    env,
    readFile: (f) => {
      const t = files.get(f);
      if (t === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return t;
    },
    writeFile: (f, t) => {
      writes.push(f);
      files.set(f, t);
    },
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
  };
  await baseParser(args, 'nvidia-ctk').command(createConfigCommand(deps)).demandCommand(1).parseAsync();
  return { stdout: out.join(''), stderr: err.join(''), files, writes };
}

async function runError(args: string[], files?: Map<string, string>): Promise<string> {
  try {
    await run(args, files);
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    expect(e.userMessage()).not.toContain('\n');
    return e.userMessage();
  }
  throw new Error(`no error for ${args.join(' ')}`);
}

describe('nvidia-ctk config (command)', () => {
  it('config default | create-default | generate-default print the defaults; -o writes them', async () => {
    for (const name of ['default', 'create-default', 'generate-default']) expect((await run(['config', name])).stdout).toBe(DEFAULTS);
    const r = await run(['config', 'default', '-o', '/tmp/x/config.toml']);
    expect(r.stdout).toBe('');
    expect(r.files.get('/tmp/x/config.toml')).toBe(DEFAULTS);
  });

  it('without a file: the defaults (with the sets) on stdout; --in-place creates the file', async () => {
    expect((await run(['config'])).stdout).toBe(DEFAULTS);
    const r = await run(['config', '--set', 'nvidia-container-runtime.mode=cdi', '--set', 'nvidia-container-cli.root=/run/nvidia/driver', '-i']);
    expect(r.writes).toEqual([FILE]);
    const text = r.files.get(FILE)!;
    expect(text.split('\n').filter((l, i) => l !== DEFAULTS.split('\n')[i])).toEqual(['root = "/run/nvidia/driver"', 'mode = "cdi"']);
  });

  it('the file comes from --config-file / --config / -c, else $NVIDIA_CTK_CONFIG_FILE_PATH, else the default path', async () => {
    const files = new Map([
      ['/a.toml', 'disable-require = true\n'],
      ['/b.toml', 'disable-require = false\n'],
    ]);
    for (const flag of ['--config-file', '--config', '-c']) expect((await run(['config', flag, '/a.toml'], files)).stdout).toBe('disable-require = true\n');
    expect((await run(['config'], files, { NVIDIA_CTK_CONFIG_FILE_PATH: '/b.toml' })).stdout).toBe('disable-require = false\n');
    await expect(run(['config'], files, { NVIDIA_CTK_CONFIG_FILE_PATH: 'rel.toml' })).rejects.toThrow(/must be an absolute path/);
  });

  it('--set repeatable, last one wins; -o FILE; --in-place leaves an unchanged file alone', async () => {
    const files = new Map([[FILE, DEFAULTS]]);
    const r = await run(['config', '--set', 'nvidia-container-runtime.mode=cdi', '--set', 'nvidia-container-runtime.mode=legacy', '-o', '/out.toml'], files);
    expect(r.stdout).toBe('');
    expect(parseToml(r.files.get('/out.toml')!)).toMatchObject({ 'nvidia-container-runtime': { mode: 'legacy' } });
    expect(r.files.get(FILE)).toBe(DEFAULTS);
    expect((await run(['config', '-i', '--set', 'nvidia-container-runtime.mode=auto'], files)).writes).toEqual([]);
    expect((await run(['config', '-i', '--set', 'features.allow-ldconfig-from-container=nil'], files)).writes).toEqual([]);
  });

  it('warns on stderr about unknown keys kept from the file and about a re-serialised file', async () => {
    const files = new Map([[FILE, '[nvidia-container-runtime]\nmodes.cdi.spec-dirs = ["/a"]\nfancy = 1\n']]);
    const r = await run(['config', '--set', 'nvidia-container-runtime.modes.cdi.default-kind=x.com/y'], files);
    expect(r.stderr).toBe(
      `nvidia-ctk: warning: config.toml ${FILE}: unknown key "nvidia-container-runtime.fancy" ignored\n` +
        `nvidia-ctk: warning: config.toml ${FILE}: its layout could not be edited line by line, so it was re-serialised and its comments dropped\n`,
    );
  });

  it('errors are one line with a fix', async () => {
    expect(await runError(['config', '-i', '-o', '/x'])).toBe('cannot specify both --in-place and --output; use --in-place to rewrite the config file, or --output FILE to write elsewhere');
    expect(await runError(['config', '--set', 'nope=1'])).toMatch(/^--set nope=1: unknown config key "nope"; known keys: /);
    expect(await runError(['config', '--set'])).toBe('--set needs KEY[=VALUE]; e.g. --set nvidia-container-runtime.mode=cdi');
    expect(await runError(['config', '-c', ''])).toMatch(/^--config-file is empty; /);
    expect(await runError(['config', '--set-list-separator', '', '--set', 'disable-require'])).toMatch(/^--set-list-separator is empty; /);
    expect(await runError(['config', 'default', '--set', 'x=1'])).toMatch(/^Unknown arguments?: .*set/);
    expect(await runError(['config', 'bogus'])).toBe('Unknown argument: bogus; see nvidia-ctk --help');
  });
});

describe('nvidia-ctk config on disk (the shipped binary)', () => {
  let dir: string;
  beforeAll(() => (dir = tempDir('config-cmd')));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--in-place is atomic, keeps the mode of an existing file, creates a new one 0644', async () => {
    const file = join(dir, 'etc', 'config.toml');
    await execa(distBin('nvidia-ctk'), ['config', '-c', file, '--set', 'nvidia-container-runtime.runtimes=runc,crun', '--in-place']);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(parseToml(readFileSync(file, 'utf8'))).toMatchObject({ 'nvidia-container-runtime': { runtimes: ['runc', 'crun'] } });
    chmodSync(file, 0o600);
    await execa(distBin('nvidia-ctk'), ['config', '-c', file, '--set', 'nvidia-container-cli.no-cgroups', '-i']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain('\nno-cgroups = true\n');
    expect(readdirSync(join(dir, 'etc'))).toEqual(['config.toml']);
  });

  it('default -o, then an error exits 1 with one line on stderr and leaves the file as it was', async () => {
    const file = join(dir, 'd.toml');
    await execa(distBin('nvidia-ctk'), ['config', 'default', '-o', file]);
    expect(readFileSync(file, 'utf8')).toBe(DEFAULTS);
    const r = await execa(distBin('nvidia-ctk'), ['config', '-c', file, '--set', 'nvidia-container-runtime.mode=fast', '-i'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('nvidia-ctk: --set nvidia-container-runtime.mode=fast: nvidia-container-runtime.mode must be one of auto, legacy, cdi, csv (got "fast"); see `nvidia-ctk config default` and docs/configuration.md for the values each key takes');
    expect(readFileSync(file, 'utf8')).toBe(DEFAULTS);
    const isDir = await execa(distBin('nvidia-ctk'), ['config', '-c', dir], { reject: false });
    expect(isDir.stderr).toBe(`nvidia-ctk: config.toml ${dir}: cannot read (EISDIR); make it a readable regular file, or name another one with --config-file`);
  });
});
