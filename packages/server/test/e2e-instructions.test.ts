import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, api, RawClient, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';

const ADMIN = 'admin-token-for-e2e-tests-0123456789';

describe('instructions: typed server→client commands with ACK and audit', () => {
  let srv: ServerProcess;
  const clients: MagpieClient[] = [];
  before(async () => {
    srv = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '1000' } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });
  const issue = (body: unknown, token = ADMIN) => api(srv.url, 'POST', '/api/admin/instructions', body, token);

  it('the admin API needs the admin token and validates payloads', async () => {
    const u = await registerAndLogin(srv.url);
    assert.equal((await issue({ userId: u.userId, kind: 'clear_cache' }, 'wrong-token-wrong-token')).status, 401);
    assert.equal((await issue({ userId: u.userId, kind: 'reboot' })).body.error.code, 'invalid');
    assert.equal((await issue({ userId: u.userId, kind: 'set_config', payload: { nokey: 1 } })).body.error.code, 'invalid');
    assert.equal((await issue({ userId: 'u-nobody', kind: 'clear_cache' })).body.error.code, 'not_found');
  });

  it('a pending instruction is applied before history shows, then reported and audited', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const store = new MemoryStore();
    const cb = sdkClient({ baseUrl: srv.url, token: b.token, store });
    clients.push(cb);
    await cb.connect();
    const ca = sdkClient({ baseUrl: srv.url, token: a.token });
    clients.push(ca);
    await ca.connect();
    const m = await ca.sendText({ to: b.userId }, 'before the repair');
    const conv = (await ca.waitForSend(m.clientMsgId))!.conv!;
    await eventually(async () => (await cb.getMessages(conv, { after: 0 })).messages.length === 1, 'B has the message');
    cb.close();
    const issued = await issue({ userId: b.userId, deviceId: b.deviceId, kind: 'force_full_sync', payload: { reason: 'corrupt cache' } });
    assert.equal(issued.status, 201);
    const id = issued.body.instruction.id;
    // B comes back: the instruction arrives in the hello reply and runs before any sync.
    const order: string[] = [];
    const cb2 = sdkClient({ baseUrl: srv.url, token: b.token, store });
    clients.push(cb2);
    cb2.on('instruction', (e) => order.push(`instruction:${e.instruction.kind}:${e.ok}`));
    cb2.on('syncProgress', (p) => order.push(`sync:${p.phase}`));
    cb2.on('message', () => order.push('message'));
    await cb2.connect();
    assert.equal(order[0], 'instruction:force_full_sync:true', `instruction first, got ${order.join(', ')}`);
    assert.ok(order.some((x) => x === 'sync:full'), 'the forced full sync ran');
    assert.equal((await cb2.getConversation(conv))?.lastSeq, 1, 'the list was rebuilt from the server');
    await eventually(async () => {
      const audit = await api(srv.url, 'GET', `/api/admin/instructions?userId=${b.userId}`, undefined, ADMIN);
      const t = audit.body.instructions.find((i: any) => i.id === id)?.targets[0];
      return t?.status === 'done' && t.deliveredAt !== null && t.completedAt !== null;
    }, 'the audit shows the instruction done');
  });

  it('live instructions reach every device; diagnostics and config come back in the audit', async () => {
    const u = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
    const c = sdkClient({ baseUrl: srv.url, token: u.token });
    clients.push(c);
    await c.connect();
    const diag = await issue({ userId: u.userId, kind: 'upload_diagnostics' });
    const cfg = await issue({ userId: u.userId, kind: 'set_config', payload: { key: 'heartbeat.foregroundIntervalMs', value: 30000 } });
    await eventually(() => c.remoteConfig['heartbeat.foregroundIntervalMs'] === 30000, 'config applied');
    await eventually(async () => {
      const audit = await api(srv.url, 'GET', `/api/admin/instructions?userId=${u.userId}`, undefined, ADMIN);
      const d = audit.body.instructions.find((i: any) => i.id === diag.body.instruction.id)?.targets[0];
      const k = audit.body.instructions.find((i: any) => i.id === cfg.body.instruction.id)?.targets[0];
      return d?.status === 'done' && d.result?.userId === u.userId && typeof d.result?.inboxSeq === 'number' && k?.status === 'done';
    }, 'diagnostics uploaded and config acknowledged');
  });

  it('an instruction result is recorded once; a foreign or repeated report is refused', async () => {
    const u = await registerAndLogin(srv.url);
    const other = await registerAndLogin(srv.url);
    const issued = await issue({ userId: u.userId, kind: 'clear_cache' });
    const { client: raw, welcome } = await RawClient.connect(srv.wsUrl, u.token);
    assert.equal(welcome.instructions[0].instructionId, issued.body.instruction.id);
    const { client: intruder } = await RawClient.connect(srv.wsUrl, other.token);
    assert.deepEqual(await intruder.request({ type: 'instruction.result', instructionId: issued.body.instruction.id, ok: true }), { recorded: false });
    assert.deepEqual(await raw.request({ type: 'instruction.result', instructionId: issued.body.instruction.id, ok: true, result: { cleared: true } }), { recorded: true });
    assert.deepEqual(await raw.request({ type: 'instruction.result', instructionId: issued.body.instruction.id, ok: false }), { recorded: false });
    assert.deepEqual(raw.schemaErrors, []);
    raw.close();
    intruder.close();
  });
});
