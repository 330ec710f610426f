/**
 * Message search, jump to a message and subject conversations end to end: the real server
 * process (SQLite, and PostgreSQL when reachable), the SDK's SearchApi and MagpieClient.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { MessageSearchResultSchema, SubjectSchema } from '@magpie/protocol';
import { startServer, registerAndLogin, api, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';
import { PG_URL, pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { RestApi } from '../../sdk/src/rest.ts';
import { SearchApi, isSubjectConversation } from '../../sdk/src/search.ts';
import { MagpieClientError } from '../../sdk/src/errors.ts';
import type { MagpieClient } from '../../sdk/src/client.ts';

const ADMIN = 'search-admin-token-0123456789';
const pgSkip = await pgUnavailable();

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`search, jump and subjects end to end (${engine})`, { skip: engine === 'postgres' ? (pgSkip ?? false) : false }, () => {
    let srv: ServerProcess;
    const db = testDatabase('magpie_search');
    const admin = engine === 'postgres' ? postgres(PG_URL, { max: 1, onnotice: () => {} }) : null;
    const clients: MagpieClient[] = [];
    before(async () => {
      const env: Record<string, string> = { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000' };
      if (admin) {
        const url = await db.create();
        env.MAGPIE_STORE = url.toString();
      }
      srv = await startServer({ env });
    });
    after(async () => {
      for (const c of clients) c.close();
      await srv?.stop();
      if (admin) {
        await db.drop();
      }
    });

    it('finds CJK and Latin text in own conversations only, filters, pages and jumps to the hit', async () => {
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url);
      const c = await registerAndLogin(srv.url);
      const rest = new RestApi({ baseUrl: srv.url });
      const [A, B, C] = [a, b, c].map((u) => new SearchApi(rest, u.token)) as [SearchApi, SearchApi, SearchApi];
      const ca = sdkClient({ baseUrl: srv.url, token: a.token });
      const cb = sdkClient({ baseUrl: srv.url, token: b.token });
      clients.push(ca, cb);
      await Promise.all([ca.connect(), cb.connect()]);
      await ca.sendText({ to: b.userId }, '周末一起去爬山吗');
      for (let i = 0; i < 40; i++) await ca.sendText({ to: b.userId }, `filler message ${i}`);
      const target = await ca.waitForSend((await ca.sendText({ to: b.userId }, 'The Quarterly REPORT is ready')).clientMsgId);
      for (let i = 40; i < 80; i++) await ca.sendText({ to: b.userId }, `filler message ${i}`);
      await eventually(() => ca.outgoing().every((m) => m.state !== 'sending'), 'all sends acknowledged');
      const conv = target!.conv!;
      const group = await api(srv.url, 'POST', '/api/groups', { name: 'hikers', members: [b.userId], joinPolicy: 'open' }, a.token);
      assert.equal(group.status, 201);
      const g = group.body.group.conv as string;
      await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'g1', conv: g, kind: 'text', body: { text: '爬山 plan before carol' } }, b.token);
      assert.equal((await api(srv.url, 'POST', `/api/groups/${encodeURIComponent(g)}/join`, {}, c.token)).status, 200);
      await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'g2', conv: g, kind: 'text', body: { text: '爬山 plan after carol' } }, b.token);

      await eventually(async () => (await B.search('爬山')).hits.length === 3, 'indexed shortly after the commit');
      const cjk = await B.search('爬山');
      MessageSearchResultSchema.parse(cjk);
      assert.deepEqual(cjk.hits.map((h) => h.text), ['爬山 plan after carol', '爬山 plan before carol', '周末一起去爬山吗']);
      assert.deepEqual((await C.search('爬山')).hits.map((h) => h.text), ['爬山 plan after carol'], 'carol: not the direct chat, not the group before her join');
      assert.deepEqual((await A.search('quarterly report')).hits.map((h) => h.seq), [target!.seq]);
      assert.deepEqual((await B.search('爬山', { conv: g, sender: b.userId })).hits.length, 2);
      assert.deepEqual((await B.search('爬山', { kind: 'file' })).hits, []);

      const pages: number[] = [];
      let before: string | undefined;
      do {
        const page = await B.search('filler', { limit: 30, ...(before ? { before } : {}) });
        pages.push(page.hits.length);
        before = page.next ?? undefined;
      } while (before);
      assert.deepEqual(pages, [30, 30, 20]);
      await assert.rejects(B.search('   '), (e: unknown) => e instanceof MagpieClientError && e.code === 'invalid' && e.status === 400);
      await assert.rejects(B.search('x', { before: 'junk' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'invalid');
      await assert.rejects(new SearchApi(rest, 'bogus').search('x'), (e: unknown) => e instanceof MagpieClientError && e.code === 'unauthorized');

      // Jump: B's device holds only the newest messages; the window around the hit comes from the server.
      const hit = (await B.search('quarterly')).hits[0]!;
      const around = await cb.historyAround(hit.conv, hit.seq, { before: 5, after: 5 });
      assert.deepEqual(around.messages.map((m) => m.seq), Array.from({ length: 11 }, (_, i) => hit.seq - 5 + i));
      assert.equal((around.messages[5]!.body as { text: string }).text, 'The Quarterly REPORT is ready');
      assert.equal(conv, hit.conv);
    });

    it('subject conversations: one per subject for the same two users, shown by its subject, attached by the operator', async () => {
      const buyer = await registerAndLogin(srv.url);
      const seller = await registerAndLogin(srv.url);
      const other = await registerAndLogin(srv.url);
      const rest = new RestApi({ baseUrl: srv.url });
      const attach = (body: unknown, token = ADMIN) => fetch(`${srv.url}/api/admin/subjects`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const item = await attach({ users: [buyer.userId, seller.userId], type: 'item', id: 'sku-1001', title: '二手相机 Canon AE-1', attrs: { price: '120000', currency: 'CNY' } });
      assert.equal(item.status, 200, JSON.stringify(item.body));
      SubjectSchema.parse(item.body.subject);
      assert.equal(item.body.created, true);
      const order = await attach({ users: [seller.userId, buyer.userId], type: 'order', id: 'o-77', title: 'Order 77' });
      const convItem = item.body.subject.conv as string;
      const convOrder = order.body.subject.conv as string;
      assert.notEqual(convItem, convOrder);
      assert.ok(isSubjectConversation(convItem) && isSubjectConversation(convOrder));
      const again = await attach({ users: [buyer.userId, seller.userId], type: 'item', id: 'sku-1001', title: '二手相机 Canon AE-1', attrs: { price: '120000', currency: 'CNY' } });
      assert.equal(again.body.created, false);
      assert.equal(again.body.subject.conv, convItem);
      // Bad input changes nothing.
      assert.equal((await attach({ users: [buyer.userId, buyer.userId], type: 'item', id: 'x', title: 't' })).status, 400);
      assert.equal((await attach({ users: [buyer.userId, 'u_nobody'], type: 'item', id: 'x', title: 't' })).status, 404);
      assert.equal((await attach({ users: [buyer.userId, seller.userId], type: 'Item:', id: 'x', title: 't' })).status, 400);
      assert.equal((await attach({ users: [buyer.userId, seller.userId], type: 'item', id: 'x', title: 't' }, 'wrong-token-0123456789')).status, 401);

      // Chat in the subject conversation; the plain direct chat stays separate.
      const cb = sdkClient({ baseUrl: srv.url, token: buyer.token });
      clients.push(cb);
      await cb.connect();
      const m = await cb.waitForSend((await cb.sendText({ conv: convItem }, '相机还在吗？')).clientMsgId);
      assert.equal(m?.conv, convItem);
      const plain = await cb.waitForSend((await cb.sendText({ to: seller.userId }, 'hi')).clientMsgId);
      assert.notEqual(plain?.conv, convItem);
      const S = new SearchApi(rest, seller.token);
      await eventually(async () => (await S.search('还在')).hits.length === 1, 'seller finds the subject chat');
      assert.equal((await S.search('还在')).hits[0]!.conv, convItem);

      const subject = await S.subject(convItem);
      assert.equal(subject?.title, '二手相机 Canon AE-1');
      assert.deepEqual(subject?.attrs, { price: '120000', currency: 'CNY' });
      assert.equal(await S.subject(plain!.conv!), null);
      await assert.rejects(new SearchApi(rest, other.token).subject(convItem), (e: unknown) => e instanceof MagpieClientError && e.code === 'forbidden');
      const stranger = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'x1', conv: convItem, kind: 'text', body: { text: 'intrude' } }, other.token);
      assert.equal(stranger.status, 403);
      // The list shows both conversations; the subject notice opens the subject chat.
      const list = await api(srv.url, 'GET', '/api/conversations', undefined, seller.token);
      const convs = (list.body.entries as { conv: string }[]).map((e) => e.conv);
      assert.ok(convs.includes(convItem) && convs.includes(convOrder) && convs.includes(plain!.conv!));
      const hist = await api(srv.url, 'GET', `/api/conversations/${encodeURIComponent(convItem)}/messages`, undefined, seller.token);
      const first = (hist.body.messages as { seq: number; kind: string; body: { event?: string } }[]).find((x) => x.seq === 1);
      assert.equal(first?.kind, 'system');
      assert.equal(first?.body.event, 'subject');
    });
  });
}
