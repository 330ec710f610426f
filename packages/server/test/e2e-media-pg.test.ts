import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { runMediaE2E } from './media-e2e-suite.ts';

const skip = await pgUnavailable();
if (!skip) {
  runMediaE2E('local disk, PostgreSQL', async () => {
    const db = testDatabase('magpie_media');
    const url = await db.create();
    return {
      env: { MAGPIE_STORE: url.toString() },
      cleanup: async () => {
        await db.drop();
      },
    };
  });
}
