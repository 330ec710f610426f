import { describe, before, after } from 'node:test';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { startServer, type ServerProcess } from './harness.ts';
import { LIFECYCLE_ENV, lifecycleSuite } from './lifecycle-e2e-suite.ts';

const skip = await pgUnavailable();

describe('message lifecycle end to end (PostgreSQL)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_lc');
  let srv: ServerProcess;
  before(async () => {
    const url = await db.create();
    srv = await startServer({ env: { ...LIFECYCLE_ENV, MAGPIE_STORE: url.toString() } });
  });
  after(async () => {
    await srv?.stop();
    await db.drop();
  });
  lifecycleSuite(() => srv);
});
