/**
 * Issue 13: `sqliteSynchronous` / MAGPIE_SQLITE_SYNCHRONOUS had no effect: every SQLite store
 * of the server shares one connection, and the instruction store opened it asking for FULL,
 * which (the stronger level wins) overrode `normal`. The level is read back from the
 * connection the stores use, on a server wired exactly as `npm start` wires it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer } from '../src/app.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import type { SqliteEngine } from '../src/db/sqlite-engine.ts';

async function levelOf(sqliteSynchronous: 'full' | 'normal'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-sync-'));
  const server = await createMagpieServer(loadConfig({}, { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', sqliteSynchronous }));
  try {
    return ((server.store as SqlStore).db as SqliteEngine).synchronous;
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('sqliteSynchronous reaches the shared SQLite connection', () => {
  it('normal is in force with every store of the server open', async () => {
    assert.equal(await levelOf('normal'), 'normal');
  });
  it('full is in force by default', async () => {
    assert.equal(await levelOf('full'), 'full');
  });
});
