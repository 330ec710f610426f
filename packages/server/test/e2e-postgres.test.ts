import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, api, pullAll, type ServerProcess } from './harness.ts';

const skip = await pgUnavailable();

describe('the whole server on PostgreSQL (MAGPIE_STORE=postgres://…)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_e2e');
  let srv: ServerProcess;
  before(async () => {
    const url = await db.create();
    srv = await startServer({ env: { MAGPIE_STORE: url.toString(), MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000', MAGPIE_ADMIN_TOKEN: 'pg-admin-token-0123456789' } });
  });
  after(async () => {
    await srv?.stop();
    await db.drop();
  });

  it('chat, offline catch-up, groups, list changes and instructions work end to end', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const c = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const sent = [];
    for (let i = 0; i < 30; i++) sent.push(ca.request({ type: 'send', clientMsgId: `p${i}`, to: b.userId, kind: 'text', body: { text: `p${i}` } }));
    const replies = await Promise.all(sent);
    assert.deepEqual(replies.map((r) => r.message.seq).sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i + 1));
    await cb.waitFor(() => cb.firstArrivals().length === 30);
    cb.send({ type: 'ack', inboxSeq: 30 });
    await ca.waitFor((f) => f.type === 'delivered' && f.seq === 30);
    cb.close();
    // Group, with notices in seq order, while B is offline.
    const g = (await api(srv.url, 'POST', '/api/groups', { name: 'PG group', members: [b.userId, c.userId] }, a.token)).body.group;
    await ca.request({ type: 'send', clientMsgId: 'g1', conv: g.conv, kind: 'text', body: { text: 'hello group' }, mentions: [b.userId] });
    const { client: cb2, welcome } = await RawClient.connect(srv.wsUrl, b.token, 30);
    assert.equal(welcome.sync, 'incremental');
    const pulled = await pullAll(cb2, 30);
    assert.deepEqual(pulled.items.map((x: any) => x.message.body.text ?? x.message.body.event), ['group_created', 'hello group']);
    const list = await cb2.request({ type: 'convs', since: 0 });
    const entry = list.entries.find((e: any) => e.conv === g.conv);
    assert.equal(entry.mentions, 1);
    // Instructions on PostgreSQL too.
    const issued = await api(srv.url, 'POST', '/api/admin/instructions', { userId: b.userId, kind: 'upload_diagnostics' }, 'pg-admin-token-0123456789');
    assert.equal(issued.status, 201);
    const instr = await cb2.waitFor((f) => f.type === 'instruction');
    assert.deepEqual(await cb2.request({ type: 'instruction.result', instructionId: instr.instructionId, ok: true, result: { ok: 1 } }), { recorded: true });
    assert.deepEqual([...ca.schemaErrors, ...cb2.schemaErrors], []);
    ca.close();
    cb2.close();
  });
});
