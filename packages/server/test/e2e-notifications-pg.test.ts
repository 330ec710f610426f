import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { runNotificationRetentionE2E, runNotificationsE2E } from './notifications-e2e-suite.ts';

/** A fresh database per suite on the local PostgreSQL. */
async function freshDatabase(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  const dbName = `magpie_notif_${randomBytes(4).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE "${dbName}"`);
  const url = new URL(PG_URL);
  url.pathname = `/${dbName}`;
  return {
    env: { MAGPIE_STORE: url.toString() },
    cleanup: async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
      await admin.end({ timeout: 2 });
    },
  };
}

const skip = await pgUnavailable();
if (!skip) {
  runNotificationsE2E('PostgreSQL', freshDatabase);
  runNotificationRetentionE2E('PostgreSQL', freshDatabase);
}
