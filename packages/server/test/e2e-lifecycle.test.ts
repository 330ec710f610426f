import { describe, before, after } from 'node:test';
import { startServer, type ServerProcess } from './harness.ts';
import { LIFECYCLE_ENV, lifecycleSuite } from './lifecycle-e2e-suite.ts';

describe('message lifecycle end to end (SQLite)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: LIFECYCLE_ENV });
  });
  after(async () => {
    await srv?.stop();
  });
  lifecycleSuite(() => srv);
});
