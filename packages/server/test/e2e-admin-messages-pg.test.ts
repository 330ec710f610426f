/** The operator's message actions on PostgreSQL (real server process; see admin-messages-e2e-suite.ts). */
import { describe, before, after } from 'node:test';
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { startServer, type ServerProcess } from './harness.ts';
import { MSG_ENV, adminMessagesSuite } from './admin-messages-e2e-suite.ts';

const skip = await pgUnavailable();

describe('operator message actions (PostgreSQL)', { skip: skip ?? false }, () => {
  const dbName = `magpie_msgadm_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  let srv: ServerProcess;
  before(async () => {
    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
    const url = new URL(PG_URL);
    url.pathname = `/${dbName}`;
    srv = await startServer({ env: { ...MSG_ENV, MAGPIE_STORE: url.toString() } });
  });
  after(async () => {
    await srv?.stop();
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end({ timeout: 2 });
  });
  adminMessagesSuite(() => srv);
});
