import { GPU_MARKERS } from '../../../src/runtime/markers.js';
test('x', () => { expect(GPU_MARKERS).toContain('NVIDIA_'); });
