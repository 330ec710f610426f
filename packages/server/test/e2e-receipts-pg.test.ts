import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { runReceiptsE2e } from './receipts-e2e-suite.ts';

// Needs PostgreSQL at 127.0.0.1:5432 (database `test`); skips with a message when it is absent.
const skip = await pgUnavailable();
const dbName = `magpie_rcpt_${randomBytes(4).toString('hex')}`;
const admin = skip ? null : postgres(PG_URL, { max: 1, onnotice: () => {} });
runReceiptsE2e(
  'postgres',
  async () => {
    if (!admin) {
      console.log(`# skipped: ${skip}`);
      return null;
    }
    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
    const url = new URL(PG_URL);
    url.pathname = `/${dbName}`;
    return { MAGPIE_STORE: url.toString() };
  },
  async () => {
    if (!admin) return;
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => {});
    await admin.end();
  },
);
