import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readiness, type HealthSources } from '../src/http/health-routes.ts';

/** Readiness checks in isolation: a failing or hung database or Bus is reported as failed within the timeout. */
const sources = (over: { db?: () => Promise<unknown>; store?: () => Promise<unknown>; bus?: () => Promise<void> }): HealthSources =>
  ({
    node: 't',
    db: { get: over.db ?? (async () => ({ one: 1 })) },
    store: { getUser: over.store ?? (async () => null) },
    bus: { check: over.bus ?? (async () => {}) },
    draining: () => false,
    timeoutMs: 200,
  }) as unknown as HealthSources;

test('all answer: ok', async () => {
  assert.deepEqual(await readiness(sources({})), { database: 'ok', bus: 'ok' });
});

test('the Bus refuses: bus failed', async () => {
  assert.deepEqual(await readiness(sources({ bus: async () => Promise.reject(new Error('disconnected')) })), { database: 'ok', bus: 'failed' });
});

test('the message store hangs: database failed after the timeout, not a hung probe', async () => {
  const t0 = Date.now();
  const r = await readiness(sources({ store: () => new Promise(() => {}) }));
  assert.deepEqual(r, { database: 'failed', bus: 'ok' });
  assert.ok(Date.now() - t0 < 1500);
});

test('the shared engine throws: database failed', async () => {
  assert.deepEqual(await readiness(sources({ db: async () => Promise.reject(new Error('gone')) })), { database: 'failed', bus: 'ok' });
});
