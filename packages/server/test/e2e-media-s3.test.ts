import { runMediaE2E } from './media-e2e-suite.ts';
import { startS3 } from './s3-test-server.ts';

runMediaE2E('S3 (s3rver), SQLite', async () => {
  const s3 = await startS3();
  const o = s3.options;
  return {
    env: {
      MAGPIE_MEDIA_STORAGE: 's3',
      MAGPIE_S3_BUCKET: o.bucket,
      MAGPIE_S3_PREFIX: o.prefix,
      MAGPIE_S3_REGION: o.region,
      MAGPIE_S3_ENDPOINT: o.endpoint!,
      MAGPIE_S3_FORCE_PATH_STYLE: 'true',
      MAGPIE_S3_ACCESS_KEY_ID: o.accessKeyId!,
      MAGPIE_S3_SECRET_ACCESS_KEY: o.secretAccessKey!,
    },
    cleanup: () => s3.stop(),
  };
});

