import markers from './gpu-markers.json' with { type: 'json' };
export const GPU_MARKERS: readonly string[] = markers;
