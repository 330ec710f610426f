import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { runNotificationRetentionE2E, runNotificationsE2E } from './notifications-e2e-suite.ts';

/** A fresh database per suite on the local PostgreSQL. */
async function freshDatabase(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  const db = testDatabase('magpie_notif');
  const url = await db.create();
  return {
    env: { MAGPIE_STORE: url.toString() },
    cleanup: async () => {
      await db.drop();
    },
  };
}

const skip = await pgUnavailable();
if (!skip) {
  runNotificationsE2E('PostgreSQL', freshDatabase);
  runNotificationRetentionE2E('PostgreSQL', freshDatabase);
}
