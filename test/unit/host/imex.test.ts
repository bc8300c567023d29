/**
 * The host snapshot's IMEX channels: every /dev/nvidia-caps-imex-channels/channel<N> char node, by channel, with the
 * node's real major:minor (needs root for mknod, as the other fake-root tests).
 */
import { lookupImexChannels } from '../../../src/host/devices.js';
import { makeFakeRoot, removeFakeRoot } from '../../helpers/fake-root.js';

const DIR = '/dev/nvidia-caps-imex-channels';

describe('lookupImexChannels', () => {
  let root: string;
  beforeAll(() => {
    root = makeFakeRoot({
      devices: [
        { path: `${DIR}/channel10`, major: 234, minor: 10 },
        { path: `${DIR}/channel2`, major: 234, minor: 2 },
        { path: `${DIR}/channel0`, major: 234, minor: 0 },
        { path: `${DIR}/channel1048576`, major: 234, minor: 5 }, // beyond the driver's limit
        { path: `${DIR}/channel01`, major: 234, minor: 1 }, // not a name the driver makes
        { path: `${DIR}/other`, major: 234, minor: 3 },
      ],
      files: { [`${DIR}/channel4`]: 'not a device' },
    });
  });
  afterAll(() => removeFakeRoot(root));

  it('lists the channel char nodes, ascending, with the major:minor read from each node', () => {
    expect(lookupImexChannels(root).map(({ channel, node }) => [channel, node.path, node.major, node.minor, node.hostPath])).toEqual([
      [0, `${DIR}/channel0`, 234, 0, `${root}${DIR}/channel0`],
      [2, `${DIR}/channel2`, 234, 2, `${root}${DIR}/channel2`],
      [10, `${DIR}/channel10`, 234, 10, `${root}${DIR}/channel10`],
    ]);
  });

  it('no directory: no channels', () => {
    const empty = makeFakeRoot({ dirs: ['/dev'] });
    try {
      expect(lookupImexChannels(empty)).toEqual([]);
    } finally {
      removeFakeRoot(empty);
    }
  });
});
