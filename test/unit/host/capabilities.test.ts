import { NvrError } from '../../../src/errors.js';
import {
  ALL_LIBRARY_PREFIXES,
  EGL_PLATFORM_LIBS,
  GRAPHICS_LIBS_COMPAT,
  GRAPHICS_MODIFIER_LIBS,
  parseDriverOptions,
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
    // allocator keeps its place in the compute list: every selection follows ALL_LIBRARY_PREFIXES' one order
    const [allocator, producer] = GRAPHICS_MODIFIER_LIBS;
    expect(libraryPrefixesFor(['graphics'])).toEqual([allocator, ...GRAPHICS_LIBS, ...GRAPHICS_LIBS_GLVND, producer, ...EGL_PLATFORM_LIBS]);
    // no-glvnd: NVIDIA's non-glvnd GL libraries instead of the vendor libraries (libnvidia-container's lookup_libraries)
    expect(libraryPrefixesFor(['graphics'], ['no-glvnd'])).toEqual([allocator, ...GRAPHICS_LIBS, ...GRAPHICS_LIBS_COMPAT, producer, ...EGL_PLATFORM_LIBS]);
    expect(ALL_LIBRARY_PREFIXES).toEqual(expect.arrayContaining([...GRAPHICS_LIBS_COMPAT, ...GRAPHICS_LIBS_GLVND]));
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

  it('driver options leave out what libnvidia-container leaves out', () => {
    expect(binariesFor(['compute'], ['no-mps'])).toEqual([]);
    expect(ipcsFor(['utility', 'compute'], ['no-persistenced', 'no-mps'])).toEqual(['/var/run/nvidia-fabricmanager/socket']);
    expect(ipcsFor(['utility'], ['no-fabricmanager'])).toEqual(['/var/run/nvidia-persistenced/socket']);
    expect(controlDevicesFor(['compute', 'display'], ['no-uvm', 'no-modeset'])).toEqual(['/dev/nvidiactl']);
    expect(parseDriverOptions(['no-uvm', ' no-glvnd ', 'no-uvm', ''], 'x')).toEqual(['no-glvnd', 'no-uvm']);
    expect(() => parseDriverOptions(['no-gl'], '--driver-option')).toThrow('--driver-option: unknown driver option "no-gl"');
  });
});
