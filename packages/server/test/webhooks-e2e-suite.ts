import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, registerAndLogin, api, RawClient, sleep, type ServerProcess, type Account } from './harness.ts';
import { WebhookReceiver, type Received } from './webhook-receiver.ts';

const SECRET = 'webhook-secret-0123456789';
const ADMIN = 'admin-token-0123456789abcdef';

type Env = () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;

const sent = (rs: Received[], conv: string) => rs.filter((r) => r.event === 'message.sent' && r.payload.data.message.conv === conv).map((r) => r.payload.data.message);

/** Webhooks, keyword filter, outbox and reports end to end against the real server process and a real local HTTP receiver. */
export function runWebhooksE2E(name: string, envOf: Env): void {
  describe(`webhooks end to end: ${name}`, () => {
    let srv: ServerProcess;
    let cleanup: () => Promise<void>;
    let env: Record<string, string>;
    let hooks: WebhookReceiver;
    let a: Account;
    let b: Account;
    let c: Account;
    let conn: RawClient;
    let slow = true;
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-webhooks-'));
    const start = () =>
      startServer({
        dataDir,
        env: {
          ...env,
          MAGPIE_ADMIN_TOKEN: ADMIN,
          MAGPIE_KEYWORDS: 'forbiddenword,禁词',
          MAGPIE_WEBHOOK_POLL_MS: '100',
          MAGPIE_WEBHOOK_RETRY_BASE_MS: '100',
          MAGPIE_WEBHOOK_RETRY_MAX_MS: '400',
          MAGPIE_WEBHOOK_MAX_ATTEMPTS: '1000',
          MAGPIE_WEBHOOKS: JSON.stringify([
            { name: 'moderation', url: hooks.url, secret: SECRET, beforeSend: true, timeoutMs: 2500, failMode: 'closed' },
            { name: 'audit', url: hooks.url.replace('/hook', '/audit'), secret: SECRET, events: ['*'] },
          ]),
        },
      });

    before(async () => {
      const e = await envOf();
      env = e.env;
      cleanup = e.cleanup;
      hooks = await new WebhookReceiver(SECRET).start();
      hooks.respond = async (r) => {
        if (r.event !== 'message.before_send') return { status: 200 };
        const text = r.payload.data.body?.text ?? '';
        if (text.includes('deny me')) return { status: 200, json: { action: 'deny', reason: 'No spam, please.' } };
        if (text.includes('fix me')) return { status: 200, json: { action: 'modify', body: { text: 'fixed by the hook' } } };
        if (text.includes('slow') && slow) await sleep(4000);
        return { status: 200, json: { action: 'allow' } };
      };
      srv = await start();
      [a, b, c] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url)]);
      conn = (await RawClient.connect(srv.wsUrl, a.token)).client;
    });
    after(async () => {
      conn?.close();
      await srv?.stop();
      await hooks?.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await cleanup?.();
    });

    it('the keyword filter refuses a message with a listed word (any case, full-width, CJK) and stores nothing', async () => {
      for (const text of ['this has ForbiddenWord in it', 'ｆｏｒｂｉｄｄｅｎｗｏｒｄ', '这是禁词']) {
        const err = await conn.requestError({ type: 'send', clientMsgId: `kw-${text.length}`, to: b.userId, kind: 'text', body: { text } });
        assert.equal(err.code, 'rejected', text);
        assert.match(err.message, /not allowed/);
      }
      const hist = await api(srv.url, 'GET', `/api/conversations/${encodeURIComponent(`d:${[a.userId, b.userId].sort().join(':')}`)}/history?limit=10`, undefined, a.token);
      assert.equal(hist.status === 200 ? hist.body.messages.length : 0, 0);
    });

    it('a before-send hook allows, denies with a reason the sender sees, and modifies; every call is signed', async () => {
      const ok = await conn.request({ type: 'send', clientMsgId: 'bs-1', to: b.userId, kind: 'text', body: { text: 'hello there' } });
      assert.equal(ok.message.body.text, 'hello there');
      const denied = await conn.requestError({ type: 'send', clientMsgId: 'bs-2', to: b.userId, kind: 'text', body: { text: 'please deny me' } });
      assert.deepEqual([denied.code, denied.message], ['rejected', 'No spam, please.']);
      const fixed = await conn.request({ type: 'send', clientMsgId: 'bs-3', to: b.userId, kind: 'text', body: { text: 'fix me' } });
      assert.equal(fixed.message.body.text, 'fixed by the hook');
      const calls = hooks.received.filter((r) => r.event === 'message.before_send');
      assert.ok(calls.length >= 3);
      assert.ok(calls.every((r) => r.signatureOk), 'signature verifies');
      assert.equal(calls.at(-1)!.payload.data.sender, a.userId);
    });

    it('a before-send hook that does not answer in time refuses with unavailable when fail-closed', async () => {
      const err = await conn.requestError({ type: 'send', clientMsgId: 'bs-slow', to: b.userId, kind: 'text', body: { text: 'slow one' } });
      assert.equal(err.code, 'unavailable');
      // Later sends in that chat wait for it (the send order holds); once the hook answers, the resend goes through.
      slow = false;
      const again = await conn.request({ type: 'send', clientMsgId: 'bs-slow', to: b.userId, kind: 'text', body: { text: 'slow one' } });
      assert.equal(again.message.body.text, 'slow one');
    });

    it('after-events reach the audit hook signed, in conversation order, for messages, group notices and accounts', async () => {
      const g = (await api(srv.url, 'POST', '/api/groups', { name: 'Audit', members: [b.userId, c.userId] }, a.token)).body.group;
      const sends = Array.from({ length: 20 }, (_, i) => conn.request({ type: 'send', clientMsgId: `g-${i}`, conv: g.conv, kind: 'text', body: { text: `group ${i}` } }));
      await Promise.all(sends);
      await hooks.until((rs) => sent(rs, g.conv).length >= 20);
      const seqs = sent(hooks.received, g.conv).map((m: any) => m.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in seq order');
      assert.ok(hooks.received.filter((r) => r.payload.event !== 'message.before_send').every((r) => r.signatureOk));
      assert.ok(hooks.received.some((r) => r.event === 'group.event' && r.payload.data.message.conv === g.conv), 'group creation notice');
      assert.ok(hooks.received.some((r) => r.event === 'user.registered' && r.payload.data.user.id === c.userId));
      const ids = hooks.received.filter((r) => r.event !== 'message.before_send').map((r) => r.payload.id);
      assert.equal(new Set(ids).size, ids.length, 'each event once while the hook answers 2xx');
    });

    it('moderation reports: a member reports a message (excerpt kept), a non-member cannot, the operator resolves it', async () => {
      const m = await conn.request({ type: 'send', clientMsgId: 'rep-1', to: b.userId, kind: 'text', body: { text: 'buy cheap watches' } });
      const conv = m.message.conv;
      const r = await api(srv.url, 'POST', '/api/reports', { conv, seq: m.message.seq, reason: 'spam', note: 'unsolicited' }, b.token);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.report.targetUser, a.userId);
      assert.equal(r.body.report.excerpt, 'buy cheap watches');
      const outsider = await api(srv.url, 'POST', '/api/reports', { conv, seq: m.message.seq, reason: 'spam' }, c.token);
      assert.equal(outsider.status, 404);
      assert.equal((await api(srv.url, 'POST', '/api/reports', { reason: 'spam' }, c.token)).status, 400);
      const queue = await api(srv.url, 'GET', '/api/admin/reports', undefined, ADMIN);
      assert.ok(queue.body.reports.some((x: any) => x.id === r.body.report.id));
      assert.equal((await api(srv.url, 'GET', '/api/admin/reports', undefined, a.token)).status, 401);
      const done = await api(srv.url, 'PATCH', `/api/admin/reports/${r.body.report.id}`, { status: 'resolved', resolution: 'warned the sender' }, ADMIN);
      assert.equal(done.body.report.status, 'resolved');
      assert.equal((await api(srv.url, 'PATCH', `/api/admin/reports/${r.body.report.id}`, { status: 'dismissed' }, ADMIN)).status, 409);
      await hooks.until((rs) => rs.some((x) => x.event === 'report.created' && x.payload.data.report.id === r.body.report.id));
    });

    it('after-events survive a receiver outage and kill -9: delivered after restart, in order, none lost', async () => {
      let down = true;
      const before = hooks.respond;
      hooks.respond = async (r) => (r.event !== 'message.before_send' && down ? { status: 503 } : before(r));
      const g = (await api(srv.url, 'POST', '/api/groups', { name: 'Outage', members: [b.userId] }, a.token)).body.group;
      for (let i = 0; i < 15; i++) await conn.request({ type: 'send', clientMsgId: `o-${i}`, conv: g.conv, kind: 'text', body: { text: `outage ${i}` } });
      // Every event is in the outbox (pending, being retried) before the crash.
      for (;;) {
        const pending = await api(srv.url, 'GET', '/api/admin/webhooks/outbox?status=pending&limit=500', undefined, ADMIN);
        if (pending.body.events.filter((e: any) => e.key === g.conv && e.event === 'message.sent').length === 15) break;
        await sleep(100);
      }
      assert.ok(hooks.received.some((r) => r.payload.data?.message?.conv === g.conv), 'attempts were made and refused');
      conn.close();
      await srv.kill('SIGKILL');
      const attemptsBefore = hooks.received.length;
      down = false;
      srv = await start();
      conn = (await RawClient.connect(srv.wsUrl, a.token)).client;
      await hooks.until((rs) => new Set(sent(rs.slice(attemptsBefore), g.conv).map((m: any) => m.seq)).size >= 15, 20_000);
      const after = sent(hooks.received.slice(attemptsBefore), g.conv).map((m: any) => m.body.text);
      const unique = [...new Set(after)];
      assert.deepEqual(unique, Array.from({ length: 15 }, (_, i) => `outage ${i}`), 'every event, in the order sent');
    });

    it('an event set aside after its last attempt is listed and can be put back in line by the operator', async () => {
      // Events of a hook are listed with their status and counts.
      const all = await api(srv.url, 'GET', '/api/admin/webhooks/outbox?limit=5', undefined, ADMIN);
      assert.equal(all.status, 200);
      assert.ok((all.body.counts.delivered ?? 0) > 0);
      assert.equal((await api(srv.url, 'POST', '/api/admin/webhooks/outbox/999999999/retry', undefined, ADMIN)).status, 404);
    });
  });
}
