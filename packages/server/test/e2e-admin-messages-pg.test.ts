/** The operator's message actions on PostgreSQL (real server process; see admin-messages-e2e-suite.ts). */
import { describe, before, after } from 'node:test';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { startServer, type ServerProcess } from './harness.ts';
import { MSG_ENV, adminMessagesSuite } from './admin-messages-e2e-suite.ts';

const skip = await pgUnavailable();

describe('operator message actions (PostgreSQL)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_msgadm');
  let srv: ServerProcess;
  before(async () => {
    const url = await db.create();
    srv = await startServer({ env: { ...MSG_ENV, MAGPIE_STORE: url.toString() } });
  });
  after(async () => {
    await srv?.stop();
    await db.drop();
  });
  adminMessagesSuite(() => srv);
});
