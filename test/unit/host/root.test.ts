import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNvrError } from '../../../src/errors.js';
import { MAX_SYMLINKS, hostPathOf, resolveInRoot } from '../../../src/host/root.js';
import { makeFakeRoot, removeFakeRoot } from '../../helpers/fake-root.js';

describe('resolveInRoot', () => {
  let root: string;
  beforeAll(() => {
    root = makeFakeRoot({
      files: { '/usr/lib/real.so': 'x', '/etc/passwd': 'in-root passwd' },
      dirs: ['/lib'],
      symlinks: {
        '/usr/lib/rel.so': 'real.so',
        '/usr/lib/abs.so': '/usr/lib/real.so',
        '/usr/lib/chain.so': 'abs.so',
        '/lib64': 'usr/lib',
        '/escape-rel': '../../../../../../etc/passwd',
        '/escape-abs': '/../../etc/passwd',
        '/usr/lib/updir': '../../..',
        '/loop-a': 'loop-b',
        '/loop-b': '/loop-a',
        '/dangling': '/nowhere/file',
      },
    });
  });
  afterAll(() => removeFakeRoot(root));

  it('returns plain paths unchanged', () => {
    expect(resolveInRoot(root, '/usr/lib/real.so')).toEqual({ path: '/usr/lib/real.so', hostPath: join(root, 'usr/lib/real.so'), exists: true });
  });

  it('follows relative, absolute and chained links inside the root', () => {
    expect(resolveInRoot(root, '/usr/lib/rel.so').path).toBe('/usr/lib/real.so');
    expect(resolveInRoot(root, '/usr/lib/abs.so').path).toBe('/usr/lib/real.so');
    expect(resolveInRoot(root, '/usr/lib/chain.so').path).toBe('/usr/lib/real.so');
    expect(resolveInRoot(root, '/lib64/chain.so').hostPath).toBe(join(root, 'usr/lib/real.so'));
  });

  it('never climbs above the root with .. in links or in the path', () => {
    expect(resolveInRoot(root, '/escape-rel')).toMatchObject({ path: '/etc/passwd', hostPath: join(root, 'etc/passwd'), exists: true });
    expect(resolveInRoot(root, '/escape-abs').path).toBe('/etc/passwd');
    expect(resolveInRoot(root, '/../../../etc/passwd').path).toBe('/etc/passwd');
    expect(resolveInRoot(root, '/usr/lib/updir/etc/passwd').path).toBe('/etc/passwd');
  });

  it('reports missing components and keeps the tail lexical', () => {
    expect(resolveInRoot(root, '/dangling')).toMatchObject({ path: '/nowhere/file', exists: false });
    expect(resolveInRoot(root, '/usr/lib/real.so/sub')).toMatchObject({ path: '/usr/lib/real.so/sub', exists: false });
    expect(resolveInRoot(root, 'usr/./lib//missing').path).toBe('/usr/lib/missing');
  });

  it('rejects symlink loops with DRIVER_ROOT', () => {
    let err: unknown;
    try {
      resolveInRoot(root, '/loop-a');
    } catch (e) {
      err = e;
    }
    expect(isNvrError(err) && err.code).toBe('DRIVER_ROOT');
    expect((err as Error).message).toMatch(/too many levels of symbolic links/);
  });

  it('allows exactly MAX_SYMLINKS links in a chain', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvr-chain-'));
    for (let i = 0; i < MAX_SYMLINKS; i++) symlinkSync(`/l${i + 1}`, join(dir, `l${i}`));
    makeFakeRoot({ files: { [`/l${MAX_SYMLINKS}`]: 'end' } }, dir);
    expect(resolveInRoot(dir, '/l0').path).toBe(`/l${MAX_SYMLINKS}`);
    symlinkSync('/l0', join(dir, 'l-1'));
    expect(() => resolveInRoot(dir, '/l-1')).toThrow(/too many levels/);
    removeFakeRoot(dir);
  });

  it('treats root "/" as the host root', () => {
    expect(hostPathOf('/', '/etc/passwd')).toBe('/etc/passwd');
    expect(resolveInRoot('/', '/etc/passwd').hostPath).toBe('/etc/passwd');
  });
});
