import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_ENV_NAMES, loadConfig } from '../src/config/config.ts';

test('the group commit settings have environment variables (MAGPIE_COMMIT_DELAY_MS, MAGPIE_MAX_BATCH)', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.deepEqual([d.commitDelayMs, d.maxBatch], [0, 2000]);
  const c = loadConfig({ MAGPIE_CONFIG: '', MAGPIE_COMMIT_DELAY_MS: '2', MAGPIE_MAX_BATCH: '128' } as NodeJS.ProcessEnv);
  assert.deepEqual([c.commitDelayMs, c.maxBatch], [2, 128]);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_COMMIT_DELAY_MS') && CONFIG_ENV_NAMES.includes('MAGPIE_MAX_BATCH'));
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_COMMIT_DELAY_MS: '51' } as NodeJS.ProcessEnv), /commitDelayMs/);
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_MAX_BATCH: '0' } as NodeJS.ProcessEnv), /maxBatch/);
});

test('group routing settings (issue 15): on by default, environment variables, bounds', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.deepEqual(d.groupRouting, { enabled: true, forwardTimeoutMs: 5000, heartbeatMs: 1000 });
  const c = loadConfig({ MAGPIE_CONFIG: '', MAGPIE_GROUP_ROUTING: 'false', MAGPIE_GROUP_FORWARD_TIMEOUT_MS: '2000', MAGPIE_NODE_HEARTBEAT_MS: '250' } as NodeJS.ProcessEnv);
  assert.deepEqual(c.groupRouting, { enabled: false, forwardTimeoutMs: 2000, heartbeatMs: 250 });
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_GROUP_ROUTING: 'true' } as NodeJS.ProcessEnv).groupRouting.enabled, true);
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_GROUP_FORWARD_TIMEOUT_MS: '10' } as NodeJS.ProcessEnv), /forwardTimeoutMs/);
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_NODE_HEARTBEAT_MS: '0' } as NodeJS.ProcessEnv), /heartbeatMs/);
});

test('the SQLite writer thread warm-up (issue 23): on by default, MAGPIE_WRITER_WARMUP turns it off', () => {
  assert.equal(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv).sqliteWriterWarmUp, true);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_WRITER_WARMUP: '0' } as NodeJS.ProcessEnv).sqliteWriterWarmUp, false);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_WRITER_WARMUP: 'true' } as NodeJS.ProcessEnv).sqliteWriterWarmUp, true);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_WRITER_WARMUP'));
});

test('the event loop warm-up (issue 23): off by default, MAGPIE_LOOP_WARMUP turns it on and off', () => {
  assert.equal(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv).loopWarmUp, false);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_LOOP_WARMUP: '0' } as NodeJS.ProcessEnv).loopWarmUp, false);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_LOOP_WARMUP: 'false' } as NodeJS.ProcessEnv).loopWarmUp, false);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_LOOP_WARMUP: '1' } as NodeJS.ProcessEnv).loopWarmUp, true);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv, { loopWarmUp: false }).loopWarmUp, false);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_LOOP_WARMUP'));
});

test('the PostgreSQL warm-up at start (issue 15): on by default, MAGPIE_PG_WARMUP turns it off', () => {
  const d = loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv);
  assert.equal(d.pg.warmUp, true);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_PG_WARMUP: '0' } as NodeJS.ProcessEnv).pg.warmUp, false);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_PG_WARMUP: 'true' } as NodeJS.ProcessEnv).pg.warmUp, true);
  // The other pg settings stay as they were when it is set.
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_PG_WARMUP: '0', MAGPIE_PG_WAIT_MS: '500' } as NodeJS.ProcessEnv).pg.waitMs, 500);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_PG_WARMUP'));
});

test('ACK flush pacing (issue 15): off by default, MAGPIE_ACK_FLUSH_MIN_INTERVAL_MS, bounds', () => {
  assert.equal(loadConfig({ MAGPIE_CONFIG: '' } as NodeJS.ProcessEnv).ackFlushMinIntervalMs, 0);
  assert.equal(loadConfig({ MAGPIE_CONFIG: '', MAGPIE_ACK_FLUSH_MIN_INTERVAL_MS: '100' } as NodeJS.ProcessEnv).ackFlushMinIntervalMs, 100);
  assert.throws(() => loadConfig({ MAGPIE_CONFIG: '', MAGPIE_ACK_FLUSH_MIN_INTERVAL_MS: '-1' } as NodeJS.ProcessEnv), /ackFlushMinIntervalMs/);
  assert.ok(CONFIG_ENV_NAMES.includes('MAGPIE_ACK_FLUSH_MIN_INTERVAL_MS'));
});
