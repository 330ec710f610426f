import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { runWebhooksE2E } from './webhooks-e2e-suite.ts';

const skip = await pgUnavailable();
if (!skip) {
  runWebhooksE2E('PostgreSQL', async () => {
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
    const dbName = `magpie_hooks_${randomBytes(4).toString('hex')}`;
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
  });
}
