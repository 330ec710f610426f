import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3BlobOptions } from '../src/media/blob-s3.ts';

/**
 * A real S3 API server (s3rver, from npm) on a free port with one bucket, for tests of the S3
 * backend: requests go through the official client, signing and HTTP included.
 */
export async function startS3(): Promise<{ options: S3BlobOptions; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'magpie-test', configs: [] }] });
  const { port } = (await server.run()) as unknown as { port: number };
  return {
    options: {
      bucket: 'magpie-test',
      prefix: 'media/',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    },
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
