import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { runWebhooksE2E } from './webhooks-e2e-suite.ts';

const skip = await pgUnavailable();
if (!skip) {
  runWebhooksE2E('PostgreSQL', async () => {
    const db = testDatabase('magpie_hooks');
    const url = await db.create();
    return {
      env: { MAGPIE_STORE: url.toString() },
      cleanup: async () => {
        await db.drop();
      },
    };
  });
}
