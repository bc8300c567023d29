import { parseRuncArgv, type RuncArgv } from '../../../src/runtime/argv.js';

const CWD = '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc';
const parse = (line: string | string[]): RuncArgv =>
  parseRuncArgv(Array.isArray(line) ? line : line.split(' ').filter((w) => w !== ''), CWD);

interface Row {
  name: string;
  argv: string | string[];
  verb?: string;
  verbIndex?: number;
  intercept: boolean;
  bundle?: string;
  containerId?: string;
  preserveFds?: number;
}

// Argv forms taken from real callers (FACTS.md §4.6); expectations checked against runc 1.1.5 where runc decides.
const rows: Row[] = [
  {
    name: 'containerd shim (docker) create',
    argv: '--root /var/run/docker/runtime-runc/moby --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid id',
    verb: 'create', verbIndex: 6, intercept: true, bundle: '/b', containerId: 'id',
  },
  {
    name: 'containerd shim with --systemd-cgroup and console socket',
    argv: '--root /run/containerd/runc/k8s.io --log /b/log.json --log-format json --systemd-cgroup create --bundle /b --pid-file /b/init.pid --console-socket /tmp/pty1.sock --no-pivot --no-new-keyring id',
    verb: 'create', verbIndex: 7, intercept: true, bundle: '/b', containerId: 'id',
  },
  {
    name: 'conmon/CRI-O: --root= form',
    argv: '--root=/run/runc create --bundle /b --pid-file p --console-socket s id',
    verb: 'create', verbIndex: 1, intercept: true, bundle: '/b', containerId: 'id',
  },
  {
    name: 'conmon/CRI-O with --systemd-cgroup first',
    argv: '--systemd-cgroup --root=/run/runc create --bundle /b --pid-file p id',
    verb: 'create', verbIndex: 2, intercept: true, bundle: '/b', containerId: 'id',
  },
  {
    name: 'podman: --log-format=json --log=/x',
    argv: '--log-format=json --log=/x create --bundle /b --pid-file /p --no-new-keyring id',
    verb: 'create', verbIndex: 2, intercept: true, bundle: '/b', containerId: 'id',
  },
  {
    name: 'podman --cgroups=disabled: crun global --cgroup-manager takes a value',
    argv: '--cgroup-manager disabled create --bundle /b id',
    verb: 'create', verbIndex: 2, intercept: true, bundle: '/b', containerId: 'id',
  },
  { name: '-b', argv: 'create -b /b id', verb: 'create', intercept: true, bundle: '/b', containerId: 'id' },
  { name: '-b=', argv: 'create -b=/b id', verb: 'create', intercept: true, bundle: '/b', containerId: 'id' },
  { name: '--bundle=', argv: 'create --bundle=/b id', verb: 'create', intercept: true, bundle: '/b' },
  { name: '-bundle', argv: 'create -bundle /b id', verb: 'create', intercept: true, bundle: '/b' },
  { name: '-bundle=', argv: 'create -bundle=/b id', verb: 'create', intercept: true, bundle: '/b' },
  { name: 'relative bundle resolves against cwd', argv: 'create -b rel/dir id', intercept: true, bundle: `${CWD}/rel/dir` },
  { name: 'bundle defaults to cwd (conmon runs in the bundle)', argv: 'create --pid-file p id', intercept: true, bundle: CWD },
  { name: 'empty --bundle= means cwd, as in runc', argv: 'create --bundle= id', intercept: true, bundle: CWD },
  { name: 'flags after the id are reordered (urfave/cli v1)', argv: 'create id --bundle /b', intercept: true, bundle: '/b', containerId: 'id' },
  { name: 'run', argv: '--root /r run -d --bundle /b --pid-file p id', verb: 'run', verbIndex: 2, intercept: true, bundle: '/b', containerId: 'id' },
  { name: 'run with --keep --no-subreaper -d', argv: 'run --keep --no-subreaper -d -b /b id', verb: 'run', intercept: true, bundle: '/b', containerId: 'id' },
  { name: 'create with --preserve-fds', argv: 'create --preserve-fds 2 -b /b id', intercept: true, preserveFds: 2 },
  { name: 'create with --preserve-fds=0x3 (Go base-0 integer)', argv: 'create --preserve-fds=0x3 -b /b id', intercept: true, preserveFds: 3 },
  { name: '--debug=false is a boolean with a value, not a verb', argv: '--debug=false create -b /b id', verb: 'create', verbIndex: 1, intercept: true },
  { name: 'global -- ends flags; the next word is the verb', argv: '--root /r -- create -b /b id', verb: 'create', verbIndex: 3, intercept: true, bundle: '/b' },
  { name: 'command -- ends flags; the id follows', argv: 'create -b /b -- id', intercept: true, bundle: '/b', containerId: 'id' },
  { name: 'unknown global flag is boolean and does not stop interception', argv: '--future create -b /b id', verb: 'create', verbIndex: 1, intercept: true },
  { name: 'unknown global --x=y keeps its value inline', argv: '--future=create start id', verb: 'start', verbIndex: 1, intercept: false },

  // Pass-through verbs.
  { name: 'start', argv: '--root /r start id', verb: 'start', verbIndex: 2, intercept: false },
  { name: 'state', argv: '--root /r state id', verb: 'state', intercept: false },
  { name: 'delete --force', argv: '--root /r --log /b/log.json --log-format json delete --force id', verb: 'delete', verbIndex: 6, intercept: false },
  { name: 'kill id 9', argv: '--root /r kill id 9', verb: 'kill', intercept: false },
  { name: 'kill --all id KILL', argv: '--root /r kill --all id KILL', verb: 'kill', intercept: false },
  { name: 'exec whose process args contain create', argv: '--root /r exec --detach --pid-file p id sh -c create', verb: 'exec', intercept: false },
  { name: 'exec --process create (value)', argv: 'exec --process create id', verb: 'exec', intercept: false },
  { name: 'exec --preserve-fds', argv: '--root /r exec --preserve-fds 4 -d id true', verb: 'exec', intercept: false, preserveFds: 4 },
  { name: 'features', argv: 'features', verb: 'features', verbIndex: 0, intercept: false },
  { name: 'update --resources=- ', argv: '--root /r update --resources=- id', verb: 'update', intercept: false },
  { name: '--version', argv: '--version', verbIndex: -1, intercept: false },
  { name: '-v', argv: '-v', verbIndex: -1, intercept: false },
  { name: '--help', argv: '--help', verbIndex: -1, intercept: false },
  { name: 'no argv at all', argv: [], verbIndex: -1, intercept: false },
  { name: 'only global flags', argv: '--root /r --debug', verbIndex: -1, intercept: false },
  { name: '--version before create prints the version (runc does not create)', argv: '--version create -b /b id', verb: 'create', intercept: false },
  { name: 'create --help prints help', argv: 'create --help -b /b id', verb: 'create', intercept: false },
  { name: 'create -h prints help', argv: 'create -h id', verb: 'create', intercept: false },
  { name: 'help create', argv: 'help create', verb: 'help', intercept: false },

  // `create` where it is not the verb.
  { name: 'create as the --root value', argv: '--root create start id', verb: 'start', verbIndex: 2, intercept: false },
  { name: 'create as the -root value', argv: '-root create state id', verb: 'state', verbIndex: 2, intercept: false },
  { name: 'create as the --log value', argv: '--log create delete id', verb: 'delete', verbIndex: 2, intercept: false },
  { name: 'create as a bundle path of run', argv: 'run -b create id', verb: 'run', intercept: true, bundle: `${CWD}/create`, containerId: 'id' },
  { name: 'create as the container id of start', argv: 'start create', verb: 'start', intercept: false },
  { name: 'create as the container id of create', argv: 'create -b /b create', verb: 'create', intercept: true, containerId: 'create' },
  { name: 'create after -- in kill', argv: 'kill -- create 9', verb: 'kill', intercept: false },
  { name: 'create after -- in exec', argv: 'exec id -- create', verb: 'exec', intercept: false },

  // runc would refuse these before reading the bundle: never intercepted.
  { name: 'create without an id', argv: 'create -b /b', verb: 'create', intercept: false },
  { name: 'create with two ids', argv: 'create -b /b id extra', verb: 'create', intercept: false },
  { name: 'bool flag swallows the id in reordering, as in runc', argv: 'create --no-pivot id -b /b', verb: 'create', intercept: false },
  { name: '--preserve-fds with a bad value', argv: 'create --preserve-fds zz -b /b id', verb: 'create', intercept: false },
  { name: '--debug=yes is rejected by runc', argv: '--debug=yes create -b /b id', verb: 'create', intercept: false },
  { name: 'a value flag at the end has no value', argv: 'create id --bundle', verb: 'create', intercept: false },
];

describe('parseRuncArgv: caller argv table', () => {
  test.each(rows)('$name', (row) => {
    const r = parse(row.argv);
    expect(r.intercept).toBe(row.intercept);
    if ('verb' in row) expect(r.verb).toBe(row.verb);
    if (row.verbIndex !== undefined) expect(r.verbIndex).toBe(row.verbIndex);
    if (row.verbIndex === -1) expect(r.verb).toBeUndefined();
    if (row.bundle !== undefined) expect(r.bundle).toBe(row.bundle);
    if (row.containerId !== undefined) expect(r.containerId).toBe(row.containerId);
    expect(r.preserveFds).toBe(row.preserveFds ?? 0);
  });
});

describe('parseRuncArgv: details', () => {
  test('global flags of the containerd shim are read', () => {
    const r = parse('--root /var/run/docker/runtime-runc/moby --log /b/log.json --log-format json --systemd-cgroup --debug create --bundle /b id');
    expect(r.globalFlags).toEqual({
      root: '/var/run/docker/runtime-runc/moby', log: '/b/log.json', logFormat: 'json',
      debug: true, systemdCgroup: true, help: false, version: false, unknown: [],
    });
  });

  test('= forms, single-dash forms, rootless, criu and the last occurrence wins', () => {
    const r = parse('-root=/a --root /b -log=/l -log-format text --rootless true --criu /usr/sbin/criu -debug create id');
    expect(r.globalFlags).toMatchObject({
      root: '/b', log: '/l', logFormat: 'text', rootless: 'true', criu: '/usr/sbin/criu', debug: true,
    });
    expect(r.verbIndex).toBe(11);
  });

  test('boolean flags never consume the next word', () => {
    const r = parse('--debug --systemd-cgroup create id');
    expect(r).toMatchObject({ verb: 'create', verbIndex: 2, intercept: true, bundle: CWD, containerId: 'id' });
  });

  test('unknown flags are reported as written', () => {
    const r = parse('--future --other=x create --bundle /b --later id');
    expect(r.globalFlags.unknown).toEqual(['--future', '--other=x']);
    expect(r.unknownCommandFlags).toEqual(['--later']);
    expect(r.intercept).toBe(true);
  });

  test('pid file, console socket and the spec path are returned for create', () => {
    const r = parse('create --bundle /b --pid-file /b/init.pid --console-socket /tmp/s.sock id');
    expect(r).toMatchObject({ pidFile: '/b/init.pid', consoleSocket: '/tmp/s.sock', configPath: '/b/config.json' });
  });

  test('--config (runc >= 1.3) is resolved against the bundle', () => {
    expect(parse('create -b /b --config spec.json id').configPath).toBe('/b/spec.json');
    expect(parse('create -b /b --config=/etc/x.json id').configPath).toBe('/etc/x.json');
    expect(parse('create --config spec.json id').configPath).toBe(`${CWD}/spec.json`);
  });

  test('bundle and spec path are only computed for create/run', () => {
    const r = parse('start id');
    expect(r.bundle).toBeUndefined();
    expect(r.configPath).toBeUndefined();
  });

  test('preserve-fds: octal, binary, negative keeps nothing', () => {
    expect(parse('create --preserve-fds 010 id').preserveFds).toBe(8);
    expect(parse('create --preserve-fds=0b11 id').preserveFds).toBe(3);
    expect(parse('create --preserve-fds=-2 id').preserveFds).toBe(0);
    expect(parse('create --preserve-fds=-2 id').intercept).toBe(true);
  });

  test('words that merely look special are not flags', () => {
    expect(parse(['-', 'create']).verb).toBe('-');
    expect(parse(['', 'create']).verb).toBe('');
  });

  test('argv is not modified', () => {
    const argv = ['create', 'id', '--bundle', '/b'];
    parseRuncArgv(argv, CWD);
    expect(argv).toEqual(['create', 'id', '--bundle', '/b']);
  });
});
