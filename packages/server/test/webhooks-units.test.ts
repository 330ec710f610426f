/**
 * Webhook pieces without the server: signatures, the keyword filter, a fail-open before-send
 * hook against a real local HTTP server, and the outbox's ordering contract on both engines.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MagpieError } from '@magpie/protocol';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate, MIGRATIONS, type SqlEngine } from '../src/db/index.ts';
import { signPayload, verifySignature } from '../src/webhooks/signature.ts';
import { keywordFilter } from '../src/webhooks/keyword-filter.ts';
import { beforeSendHook } from '../src/webhooks/before-send.ts';
import { OutboxStore } from '../src/webhooks/outbox-store.ts';
import { WebhookReceiver } from './webhook-receiver.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const log = pino({ level: 'silent' });

test('signatures verify over the raw body and refuse tampering, another secret and stale times', () => {
  const now = Date.now();
  const h = signPayload('s3cret-s3cret-s3cret', '{"a":1}', now);
  assert.ok(verifySignature('s3cret-s3cret-s3cret', '{"a":1}', h, now));
  assert.ok(!verifySignature('s3cret-s3cret-s3cret', '{"a":2}', h, now));
  assert.ok(!verifySignature('other-secret-other', '{"a":1}', h, now));
  assert.ok(!verifySignature('s3cret-s3cret-s3cret', '{"a":1}', h, now + 10 * 60 * 1000));
  assert.ok(!verifySignature('s3cret-s3cret-s3cret', '{"a":1}', 'garbage', now));
});

test('the keyword filter masks matches in text, captions and fallbacks when set to mask', async () => {
  const hook = keywordFilter({ words: ['Bad', '坏话'], action: 'mask', reason: 'x' })!;
  assert.deepEqual(await hook('u', 'text', { text: 'a BAD word and 坏话 here' }, 'c', 'm'), { text: 'a *** word and ** here' });
  assert.deepEqual(await hook('u', 'image', { caption: 'bad', fallback: '[Image]' }, 'c', 'm'), { caption: '***', fallback: '[Image]' });
  const body = { text: 'fine' };
  assert.equal(await hook('u', 'text', body, 'c', 'm'), body, 'unchanged bodies are passed through as they are');
  assert.equal(keywordFilter({ words: [], action: 'deny', reason: 'x' }), null);
  const deny = keywordFilter({ words: ['bad'], action: 'deny', reason: 'Not here.' })!;
  await assert.rejects(async () => deny('u', 'text', { text: 'so bad' }, 'c', 'm'), (e: MagpieError) => e.code === 'rejected' && e.message === 'Not here.');
});

test('a fail-open before-send hook lets the message through when the hook is slow, errors or answers garbage', async () => {
  const rx = await new WebhookReceiver('secret-secret-secret').start();
  const outcomes: string[] = [];
  const hook = beforeSendHook({ name: 'm', url: rx.url, secret: 'secret-secret-secret', events: [], beforeSend: true, timeoutMs: 200, failMode: 'open' }, log, { inc: (l) => outcomes.push(l.outcome) });
  try {
    rx.respond = async () => (await new Promise((r) => setTimeout(r, 600)), { status: 200, json: { action: 'deny' } });
    assert.deepEqual(await hook('u', 'text', { text: 'hi' }, 'c', 'm1'), { text: 'hi' });
    rx.respond = () => ({ status: 500 });
    assert.deepEqual(await hook('u', 'text', { text: 'hi' }, 'c', 'm2'), { text: 'hi' });
    rx.respond = () => ({ status: 200, json: { action: 'modify', body: { nope: 1 } } });
    assert.deepEqual(await hook('u', 'text', { text: 'hi' }, 'c', 'm3'), { text: 'hi' }, 'an invalid modified body counts as a failure of the hook');
    assert.deepEqual(outcomes, ['fail_open', 'fail_open', 'fail_open']);
  } finally {
    await rx.stop();
  }
});

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`webhook outbox on ${engine}`, async () => {
    const skip = engine === 'postgres' ? await pgUnavailable() : null;
    const dir = mkdtempSync(join(tmpdir(), 'magpie-outbox-'));
    const schema = freshSchemaName('outbox');
    let db: SqlEngine | undefined;
    after(async () => {
      await db?.close();
      if (engine === 'postgres' && !skip) await rawClient(schema).drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('only the head of each hook and key is handed out, once, in ord order; a set-aside head lets the next go', { skip: skip ?? false }, async () => {
      db = engine === 'sqlite' ? new SqliteEngine(join(dir, 'x.db'), { checkpointMs: 0 }) : await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
      await migrate(db, MIGRATIONS);
      const box = new OutboxStore(db);
      const ev = (key: string, ord: number, hook = 'h') => ({ hook, event: 'message.sent', key, ord, payload: `${key}:${ord}` });
      // Inserted out of order for key a (as two nodes might): delivered by ord.
      await box.enqueue([ev('a', 2), ev('a', 1), ev('b', 1), ev('a', 1, 'other')], 1000);
      const first = await box.claimDue(1000, 10, 5000);
      assert.deepEqual(first.map((e) => e.payload).sort(), ['a:1', 'a:1', 'b:1']);
      assert.deepEqual(await box.claimDue(1000, 10, 5000), [], 'leased heads are not handed out again, and a:2 waits behind a:1');
      const a1 = first.find((e) => e.hook === 'h' && e.key === 'a')!;
      await box.failed(a1.id, 'answer 503', 2000, false, 1000);
      assert.deepEqual(await box.claimDue(1500, 10, 5000), [], 'a:1 is not due yet, a:2 still waits');
      const again = await box.claimDue(2000, 10, 5000);
      assert.deepEqual(again.map((e) => e.payload), ['a:1']);
      assert.equal(again[0]!.attempts, 1);
      await box.failed(a1.id, 'answer 503', 3000, true, 2000);
      const next = await box.claimDue(2000, 10, 5000);
      assert.deepEqual(next.map((e) => e.payload), ['a:2'], 'set aside: the rest of the conversation moves on');
      await box.delivered(next[0]!.id, 2000);
      assert.equal(await box.retry(a1.id, 4000), true);
      assert.deepEqual((await box.claimDue(4000, 10, 5000)).map((e) => e.payload), ['a:1']);
      const counts = await box.counts();
      assert.equal(counts.delivered, 1);
      // A lease that ran out (the node died mid-delivery) hands the event out again.
      assert.deepEqual((await box.claimDue(4000 + 5001, 10, 5000)).map((e) => e.payload).sort(), ['a:1', 'a:1', 'b:1']);
    });
  });
}
