import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBlobStore } from '../src/media/blob-local.ts';
import { S3BlobStore } from '../src/media/blob-s3.ts';
import { runBlobStoreContract } from './blob-store-contract.ts';
import { startS3 } from './s3-test-server.ts';

runBlobStoreContract('local disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-blobs-'));
  return { blobs: new LocalBlobStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

runBlobStoreContract('S3 (s3rver, a real S3 API server)', async () => {
  const s3 = await startS3();
  const blobs = new S3BlobStore(s3.options);
  return {
    blobs,
    cleanup: async () => {
      await blobs.close();
      await s3.stop();
    },
  };
});
