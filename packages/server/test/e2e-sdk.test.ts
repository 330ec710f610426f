import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatViewModel, Directory, GroupsApi, MemoryStore, RestApi, SocialApi, type LocalMessage, type MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, login, api, sleep, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';

const LIMITS = { MAGPIE_USER_RATE: '5000', MAGPIE_USER_BURST: '5000' };

async function allMessages(c: MagpieClient, conv: string): Promise<LocalMessage[]> {
  const w = await c.getMessages(conv, { after: 0, limit: 10_000 });
  return w.messages;
}

describe('SDK clients against the real server', () => {
  let srv: ServerProcess;
  const clients: MagpieClient[] = [];
  const open = (c: MagpieClient) => (clients.push(c), c);
  before(async () => {
    srv = await startServer({ env: LIMITS });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  it('A and B chat; B, offline, receives everything on reconnect, in order and once', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const ca = open(sdkClient({ baseUrl: srv.url, token: a.token }));
    const bStore = new MemoryStore();
    const cb = open(sdkClient({ baseUrl: srv.url, token: b.token, store: bStore }));
    await Promise.all([ca.connect(), cb.connect()]);
    const first = await ca.sendText({ to: b.userId }, 'hello');
    const sent = await ca.waitForSend(first.clientMsgId);
    assert.equal(sent?.state === 'sent' || sent?.state === 'delivered', true);
    const conv = sent!.conv!;
    await eventually(async () => (await allMessages(cb, conv)).length === 1, 'B got the first message live');
    cb.close();
    for (let i = 0; i < 300; i++) await ca.sendText({ conv }, `offline ${i}`);
    await eventually(() => ca.outgoing().every((m) => m.state !== 'sending'), 'all sends acknowledged');
    // B comes back with its stored state: incremental sync.
    const cb2 = open(sdkClient({ baseUrl: srv.url, token: b.token, store: bStore }));
    await cb2.connect();
    await eventually(async () => (await allMessages(cb2, conv)).length === 301, 'B has all 301 messages', 20_000);
    const msgs = await allMessages(cb2, conv);
    assert.deepEqual(msgs.map((m) => m.seq), Array.from({ length: 301 }, (_, i) => i + 1));
    assert.deepEqual(msgs.slice(1).map((m) => (m.body as { text: string }).text), Array.from({ length: 300 }, (_, i) => `offline ${i}`));
    assert.equal(cb2.welcome?.sync, 'incremental');
  });

  it('delivered status reaches the sender’s two devices: sending → sent → delivered', async () => {
    const a1 = await registerAndLogin(srv.url, { deviceId: 'a-phone', platform: 'ios' });
    const a2 = await login(srv.url, a1.username, 'a-desk', 'desktop');
    const b = await registerAndLogin(srv.url);
    const phone = open(sdkClient({ baseUrl: srv.url, token: a1.token }));
    const desk = open(sdkClient({ baseUrl: srv.url, token: a2.token }));
    const states: string[] = [];
    const deskDelivered: number[] = [];
    phone.on('message', (m) => m.own && states.push(m.state));
    desk.on('delivered', (d) => deskDelivered.push(d.seq));
    await Promise.all([phone.connect(), desk.connect()]);
    const m = await phone.sendText({ to: b.userId }, 'are you there?');
    await phone.waitForSend(m.clientMsgId);
    const cb = open(sdkClient({ baseUrl: srv.url, token: b.token }));
    await cb.connect();
    await eventually(() => states.includes('delivered'), 'the phone sees delivered');
    await eventually(() => deskDelivered.includes(1), 'the desktop sees delivered');
    const uniq = states.filter((s, i) => s !== states[i - 1]);
    assert.deepEqual(uniq, ['sending', 'sent', 'delivered']);
  });

  it('group delivered counts reach the sender’s two devices; a member’s second device counts once; an offline device catches up', async () => {
    const a1 = await registerAndLogin(srv.url, { deviceId: 'a-phone', platform: 'ios' });
    const a2 = await login(srv.url, a1.username, 'a-desk', 'desktop');
    const b1 = await registerAndLogin(srv.url, { deviceId: 'b-phone', platform: 'ios' });
    const b2 = await login(srv.url, b1.username, 'b-desk', 'desktop');
    const c = await registerAndLogin(srv.url);
    const d = await registerAndLogin(srv.url);
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'Counted', members: [b1.userId, c.userId, d.userId] }, a1.token);
    const conv: string = created.body.group.conv;
    const phone = open(sdkClient({ baseUrl: srv.url, token: a1.token }));
    const deskStore = new MemoryStore();
    const desk = open(sdkClient({ baseUrl: srv.url, token: a2.token, store: deskStore }));
    await Promise.all([phone.connect(), desk.connect()]);
    const seen = (dev: MagpieClient) => {
      const log: string[] = [];
      dev.on('message', (m) => m.own && m.kind !== 'system' && log.push(`${(m.body as { text: string }).text}:${m.state}:${m.deliveredCount}`));
      return log;
    };
    const phoneLog = seen(phone);
    const deskLog = seen(desk);
    const countOn = async (dev: MagpieClient, text: string) => (await allMessages(dev, conv)).find((m) => (m.body as { text?: string }).text === text)?.deliveredCount;

    const m = await phone.sendText({ conv }, 'hello group');
    const seq = (await phone.waitForSend(m.clientMsgId))?.seq;
    assert.equal(seq, 2, 'after the creation notice');
    await eventually(async () => (await countOn(desk, 'hello group')) === 0, 'the desk holds it, count 0');
    // B's phone stores it: 1 on both devices.
    const bPhone = open(sdkClient({ baseUrl: srv.url, token: b1.token }));
    await bPhone.connect();
    for (const dev of [phone, desk]) await eventually(async () => (await countOn(dev, 'hello group')) === 1, 'count 1');
    // B's desk stores it too: B counts once.
    const bDesk = open(sdkClient({ baseUrl: srv.url, token: b2.token }));
    await bDesk.connect();
    await eventually(async () => (await allMessages(bDesk, conv)).some((x) => x.seq === seq), 'the second device of B has it');
    await sleep(300);
    assert.equal(await countOn(phone, 'hello group'), 1, 'a second device of the same member does not count');
    // C stores it: 2 on both.
    const cc = open(sdkClient({ baseUrl: srv.url, token: c.token }));
    await cc.connect();
    for (const dev of [phone, desk]) await eventually(async () => (await countOn(dev, 'hello group')) === 2, 'count 2');
    const dedupe = (log: string[]) => log.filter((x, i) => x !== log[i - 1]);
    assert.deepEqual(dedupe(phoneLog), ['hello group:sending:null', 'hello group:sent:0', 'hello group:delivered:1', 'hello group:delivered:2']);
    assert.deepEqual(dedupe(deskLog), ['hello group:sent:0', 'hello group:delivered:1', 'hello group:delivered:2']);

    // The desk goes away; the phone sends again and D (new) stores everything.
    desk.close();
    const second = await phone.sendText({ conv }, 'second');
    await phone.waitForSend(second.clientMsgId);
    const dc = open(sdkClient({ baseUrl: srv.url, token: d.token }));
    await dc.connect();
    await eventually(async () => (await countOn(phone, 'hello group')) === 3 && (await countOn(phone, 'second')) === 3, 'the phone sees 3 and 3');

    // The desk comes back with its store: the missed message arrives with its count through
    // sync; the chat re-reads the counts of what it already held.
    const desk2 = open(sdkClient({ baseUrl: srv.url, token: a2.token, store: deskStore }));
    await desk2.connect();
    assert.equal(desk2.welcome?.sync, 'incremental');
    await eventually(async () => (await countOn(desk2, 'second')) === 3, 'sync carried the count');
    assert.equal(await countOn(desk2, 'hello group'), 2, 'stale until refreshed');
    const rest = new RestApi({ baseUrl: srv.url });
    const chat = new ChatViewModel({ client: desk2, directory: new Directory({ social: new SocialApi(rest, a2.token), groups: new GroupsApi(rest, a2.token) }) }, { conv });
    await chat.start();
    const statusOf = (text: string) => {
      for (const i of chat.getSnapshot().items) if (i.type === 'message' && i.text === text) return i.status;
      return undefined;
    };
    await eventually(() => statusOf('hello group') === 'Delivered to 3' && statusOf('second') === 'Delivered to 3', 'the chat shows “Delivered to 3” for both');
    assert.equal(await countOn(desk2, 'hello group'), 3);
    chat.dispose();
  });

  it('three devices of one user stay in sync, read state and list changes included', async () => {
    const a = await registerAndLogin(srv.url);
    const b1 = await registerAndLogin(srv.url, { deviceId: 'one', platform: 'android' });
    const b2 = await login(srv.url, b1.username, 'two', 'desktop');
    const b3 = await login(srv.url, b1.username, 'three', 'web');
    const ca = open(sdkClient({ baseUrl: srv.url, token: a.token }));
    const devs = [b1, b2, b3].map((d) => open(sdkClient({ baseUrl: srv.url, token: d.token })));
    await Promise.all([ca.connect(), ...devs.map((d) => d.connect())]);
    let conv = '';
    for (let i = 0; i < 4; i++) conv = (await ca.waitForSend((await ca.sendText({ to: b1.userId }, `n${i}`)).clientMsgId))!.conv!;
    for (const d of devs) await eventually(async () => (await d.getConversation(conv))?.unread === 4, 'unread 4 everywhere');
    await devs[0]!.markRead(conv, 4);
    await devs[0]!.updateConversation(conv, { pinned: true, draft: 'reply later' });
    for (const d of devs.slice(1)) {
      await eventually(async () => {
        const e = await d.getConversation(conv);
        return e?.unread === 0 && e.readSeq === 4 && e.pinned && e.draft === 'reply later';
      }, 'read state, pin and draft reach the other devices');
    }
  });

  it('a device away longer than the ring allows recovers through full sync', async () => {
    const small = await startServer({ env: { ...LIMITS, MAGPIE_RING_CAPACITY: '16', MAGPIE_SYNC_GAP_THRESHOLD: '10' } });
    try {
      const a = await registerAndLogin(small.url);
      const b = await registerAndLogin(small.url);
      const ca = sdkClient({ baseUrl: small.url, token: a.token });
      const bStore = new MemoryStore();
      const cb = sdkClient({ baseUrl: small.url, token: b.token, store: bStore });
      await Promise.all([ca.connect(), cb.connect()]);
      const m = await ca.sendText({ to: b.userId }, 'before');
      const conv = (await ca.waitForSend(m.clientMsgId))!.conv!;
      await eventually(async () => (await allMessages(cb, conv)).length === 1, 'B got the first message');
      cb.close();
      for (let i = 0; i < 40; i++) await ca.sendText({ conv }, `gone ${i}`);
      await eventually(() => ca.outgoing().every((x) => x.state !== 'sending'), 'sent');
      const cb2 = sdkClient({ baseUrl: small.url, token: b.token, store: bStore });
      await cb2.connect();
      assert.equal(cb2.welcome?.sync, 'full');
      await eventually(async () => (await cb2.getConversation(conv))?.lastSeq === 41, 'the list shows the latest state');
      const entry = await cb2.getConversation(conv);
      assert.equal(entry?.unread, 41, 'nothing was marked read: all 41 are unread');
      const w = await cb2.loadHistory(conv, { limit: 20 });
      assert.equal(w.messages.at(-1)?.seq, 41);
      assert.equal(w.messages.length, 20);
      assert.equal(w.hasGapBefore, true, 'the hole between seq 1 and the loaded page is not shown as complete');
      ca.close();
      cb2.close();
    } finally {
      await small.stop();
    }
  });

  it('a lost last message is recovered within one heartbeat (pong carries the latest inboxSeq)', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    let dropped = 0;
    const ca = open(sdkClient({ baseUrl: srv.url, token: a.token }));
    const cb = open(
      sdkClient({
        baseUrl: srv.url,
        token: b.token,
        heartbeatMs: 1000,
        // Drop the first live `msg` frame: the network ate it and nothing follows it.
        downlinkFilter: (text) => (text.includes('"type":"msg"') && dropped++ === 0 ? false : true),
      }),
    );
    await Promise.all([ca.connect(), cb.connect()]);
    const m = await ca.sendText({ to: b.userId }, 'the last word');
    const conv = (await ca.waitForSend(m.clientMsgId))!.conv!;
    const t0 = Date.now();
    await eventually(async () => (await allMessages(cb, conv)).length === 1, 'recovered by the next pong', 5000);
    assert.equal(dropped >= 1, true);
    assert.ok(Date.now() - t0 < 2500, `recovered within about one heartbeat (${Date.now() - t0} ms)`);
  });
});
