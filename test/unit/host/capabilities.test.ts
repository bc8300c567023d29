import { NvrError } from '../../../src/errors.js';
import {
  CAPABILITIES,
  COMPUTE_LIBS,
  GRAPHICS_LIBS,
  GRAPHICS_LIBS_GLVND,
  UTILITY_LIBS,
  VIDEO_LIBS,
  binariesFor,
  controlDevicesFor,
  expandCapabilities,
  ipcsFor,
  libraryPrefixesFor,
} from '../../../src/host/capabilities.js';

describe('capabilities', () => {
  it('expands all, normalises case and order, drops duplicates and empties', () => {
    expect(expandCapabilities(['all'])).toEqual([...CAPABILITIES]);
    expect(expandCapabilities(['Compute', ' utility', '', 'compute'])).toEqual(['utility', 'compute']);
    expect(expandCapabilities([])).toEqual([]);
  });

  it('rejects unknown capabilities with INPUT', () => {
    expect(() => expandCapabilities(['utility', 'gpu'])).toThrow(NvrError);
    expect(() => expandCapabilities(['gpu'])).toThrow(/unknown driver capability "gpu"/);
  });

  it('maps capabilities to library prefixes', () => {
    expect(libraryPrefixesFor(['utility'])).toEqual([...UTILITY_LIBS]);
    expect(libraryPrefixesFor(['compute'])).toEqual([...COMPUTE_LIBS]);
    // video implies the compute libraries
    expect(libraryPrefixesFor(['video'])).toEqual([...COMPUTE_LIBS, ...VIDEO_LIBS]);
    expect(libraryPrefixesFor(['graphics'])).toEqual([...GRAPHICS_LIBS, ...GRAPHICS_LIBS_GLVND]);
    expect(libraryPrefixesFor(['display'])).toEqual([...GRAPHICS_LIBS]);
    expect(libraryPrefixesFor(['ngx'])).toEqual(['libnvidia-ngx.so']);
    expect(libraryPrefixesFor(['compat32'])).toEqual([]);
    const all = libraryPrefixesFor(CAPABILITIES);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toContain('libnvidia-tileiras.so');
  });

  it('maps capabilities to binaries, IPC paths and control devices', () => {
    expect(binariesFor(['utility'])).toEqual(['nvidia-smi', 'nvidia-debugdump', 'nvidia-persistenced', 'nv-fabricmanager']);
    expect(binariesFor(['compute'])).toEqual(['nvidia-cuda-mps-control', 'nvidia-cuda-mps-server']);
    expect(binariesFor(['graphics', 'video'])).toEqual([]);
    expect(ipcsFor(['utility'])).toEqual(['/var/run/nvidia-persistenced/socket', '/var/run/nvidia-fabricmanager/socket']);
    expect(ipcsFor(['compute'])).toEqual(['/tmp/nvidia-mps']);
    expect(ipcsFor(['graphics'])).toEqual([]);
    expect(controlDevicesFor(['utility'])).toEqual(['/dev/nvidiactl']);
    expect(controlDevicesFor(['compute', 'display'])).toEqual([
      '/dev/nvidiactl',
      '/dev/nvidia-uvm',
      '/dev/nvidia-uvm-tools',
      '/dev/nvidia-modeset',
    ]);
  });
});
