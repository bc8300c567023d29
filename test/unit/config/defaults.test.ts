import { parse as parseToml } from 'smol-toml';
import { defaultConfig, renderDefaultConfigToml } from '../../../src/config/defaults.js';
import { parseConfig } from '../../../src/config/load.js';

describe('defaults', () => {
  it('match the peer v1.17.9 defaults (PEER.md §3.7)', () => {
    const d = defaultConfig();
    expect(d.disableRequire).toBe(false);
    expect(d.swarmResource).toBe('');
    expect(d.acceptEnvvarWhenUnprivileged).toBe(true);
    expect(d.acceptVolumeMounts).toBe(false);
    expect(d.supportedCapabilities).toEqual(['compat32', 'compute', 'display', 'graphics', 'ngx', 'utility', 'video']);
    expect(d.cli).toEqual({
      root: '/', path: '', environment: [], debug: '', ldcache: '', loadKmods: true, noCgroups: false, user: '',
      ldconfig: '@/sbin/ldconfig', noPivot: false, driverOptions: [],
    });
    expect(d.runtime.debug).toBe('/dev/null');
    expect(d.runtime.logLevel).toBe('info');
    expect(d.runtime.mode).toBe('auto');
    expect(d.runtime.runtimes).toEqual(['docker-runc', 'runc', 'crun']);
    expect(d.runtime.cdi).toEqual({ specDirs: ['/etc/cdi', '/var/run/cdi'], defaultKind: 'nvidia.com/gpu', annotationPrefixes: ['cdi.k8s.io/'] });
    expect(d.runtime.csv.mountSpecPath).toBe('/etc/nvidia-container-runtime/host-files-for-container.d');
    expect(d.runtime.legacy.cudaCompatMode).toBe('ldconfig');
    expect(d.hook).toEqual({ path: 'nvidia-container-runtime-hook', skipModeDetection: false });
    expect(d.ctk).toEqual({ path: 'nvidia-ctk' });
    expect(d.features).toEqual({});
    expect(d.file).toBeUndefined();
    expect(d.warnings).toEqual([]);
  });

  it('are deeply frozen, and each call is independent of the last', () => {
    const d = defaultConfig();
    expect(Object.isFrozen(d)).toBe(true);
    expect(Object.isFrozen(d.runtime.runtimes)).toBe(true);
    expect(Object.isFrozen(d.runtime.cdi)).toBe(true);
    expect(() => {
      (d.runtime as { mode: string }).mode = 'cdi';
    }).toThrow(TypeError);
    expect(defaultConfig().runtime.runtimes).not.toBe(d.runtime.runtimes);
  });

  it('the rendered TOML parses back to exactly the defaults, with no warnings', () => {
    const text = renderDefaultConfigToml();
    const cfg = parseConfig(text, '/x.toml');
    expect({ ...cfg, file: undefined }).toEqual({ ...defaultConfig(), file: undefined });
    expect(cfg.warnings).toEqual([]);
  });

  it('the rendered TOML has a comment and names every section', () => {
    const text = renderDefaultConfigToml();
    expect(text.split('\n')[0]).toMatch(/^# /);
    const doc = parseToml(text) as Record<string, Record<string, unknown>>;
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(['nvidia-container-cli', 'nvidia-container-runtime', 'nvidia-container-runtime-hook', 'nvidia-ctk', 'features']));
    expect(text).toContain('#root = "/run/nvidia/driver"');
  });
});
