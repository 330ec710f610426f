import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { runReceiptsE2e } from './receipts-e2e-suite.ts';

// Needs PostgreSQL at 127.0.0.1:5432 (database `test`); skips with a message when it is absent.
const skip = await pgUnavailable();
const db = testDatabase('magpie_rcpt');
runReceiptsE2e(
  'postgres',
  async () => {
    if (skip) {
      console.log(`# skipped: ${skip}`);
      return null;
    }
    const url = await db.create();
    return { MAGPIE_STORE: url.toString() };
  },
  async () => {
    await db.drop().catch(() => {});
  },
);
