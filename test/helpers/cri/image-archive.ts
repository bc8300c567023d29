/**
 * A container image from a local rootfs directory, as a docker-archive tar (what `docker save` writes) that
 * `ctr images import` reads: nothing can be pulled on the test machines. One layer (the rootfs as a tar), an image
 * config with the platform, env and entrypoint, and manifest.json naming the tag.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ImageOptions {
  /** A fully qualified reference (`localhost/name:tag`), so containerd and the CRI store name it the same way. */
  ref: string;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Writes `out` (a docker-archive tar) for `rootfs`; returns the image's config digest (`sha256:…`, its CRI id). */
export async function writeDockerArchive(rootfs: string, out: string, options: ImageOptions): Promise<string> {
  const work = `${out}.d`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const layerTmp = join(work, 'layer.tar');
    // Owned by root in the image whoever built the directory; sorted so the same rootfs gives the same digest.
    await execa('tar', ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTmp, '.']);
    const diffId = sha256(readFileSync(layerTmp));
    mkdirSync(join(work, diffId));
    renameSync(layerTmp, join(work, diffId, 'layer.tar'));
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: {
        Env: options.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ...(options.entrypoint ? { Entrypoint: options.entrypoint } : {}),
        ...(options.cmd ? { Cmd: options.cmd } : {}),
        WorkingDir: '/',
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'nvidia-runtime tests: rootfs directory' }],
    });
    const configDigest = sha256(config);
    writeFileSync(join(work, `${configDigest}.json`), config);
    writeFileSync(join(work, 'manifest.json'), JSON.stringify([{ Config: `${configDigest}.json`, RepoTags: [options.ref], Layers: [`${diffId}/layer.tar`] }]));
    await execa('tar', ['-C', work, '-cf', out, 'manifest.json', `${configDigest}.json`, `${diffId}/layer.tar`]);
    return `sha256:${configDigest}`;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
