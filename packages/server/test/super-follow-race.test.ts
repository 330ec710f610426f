/**
 * Regression: a super-group message committed while a connecting client's hello was
 * reading its super groups reached that client neither live nor through the hello's
 * `supers` positions — it showed up only with the next message of the group. The gateway
 * now follows the groups first and reads their positions after (as for the inbox).
 *
 * The window is forced: the store's superGroupsOf is wrapped so that, during the first read
 * for the connecting user, another member's message is committed and published.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { openSqliteStore } from '../src/store/open.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { api, RawClient, registerAndLogin, sleep, type Account } from './harness.ts';

describe('super group: a message committed during hello reaches the connecting client', () => {
  let dir: string;
  let server: MagpieServer;
  let base: string;
  let wsUrl: string;
  let store: SqlStore;
  let onSuperRead: ((userId: string) => Promise<void>) | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-super-race-'));
    const config = loadConfig({}, { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'warn', groups: { superThreshold: 2 } });
    store = await openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: config.ringCapacity });
    const read = store.superGroupsOf.bind(store);
    store.superGroupsOf = async (userId: string) => {
      const result = await read(userId);
      const hook = onSuperRead;
      if (hook) {
        onSuperRead = undefined;
        await hook(userId);
      }
      return result;
    };
    server = await createMagpieServer(config, { store });
    base = (await server.start()).replace('localhost', '127.0.0.1');
    wsUrl = base.replace('http', 'ws') + '/ws';
  });

  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('gets it live or within the positions of its hello', async () => {
    const a: Account = await registerAndLogin(base);
    const b: Account = await registerAndLogin(base);
    const c: Account = await registerAndLogin(base);
    const made = await api(base, 'POST', '/api/groups', { name: 'race', members: [b.userId, c.userId], joinPolicy: 'open' }, a.token);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const conv: string = made.body.group.conv;
    assert.equal(made.body.group.kind, 'super', 'three members above a threshold of 2: a super group');

    const { client: sender } = await RawClient.connect(wsUrl, a.token);
    let sentSeq = 0;
    onSuperRead = async (userId) => {
      assert.equal(userId, b.userId);
      const r = await sender.request({ type: 'send', conv, clientMsgId: 'in-the-window', kind: 'text', body: { text: 'during hello' } });
      sentSeq = r.message.seq;
      // Let the live fan-out of that message run before the hello continues.
      await sleep(50);
    };
    const { client: late, welcome } = await RawClient.connect(wsUrl, b.token);
    assert.ok(sentSeq > 0, 'the message was sent inside the window');
    const position = welcome.supers.find((s: { conv: string }) => s.conv === conv)?.lastSeq ?? 0;
    let live = false;
    if (position < sentSeq) {
      live = Boolean(await late.waitFor((f) => f.type === 'advanced' && f.conv === conv && f.seq === sentSeq, 1000).catch(() => null));
    }
    assert.ok(position >= sentSeq || live, `seq ${sentSeq} neither live nor within hello's lastSeq ${position}`);
    assert.deepEqual(late.schemaErrors, []);

    // And the next message still arrives live.
    const next = await sender.request({ type: 'send', conv, clientMsgId: 'after', kind: 'text', body: { text: 'after hello' } });
    await late.waitFor((f) => f.type === 'advanced' && f.conv === conv && f.seq === next.message.seq);
    sender.close();
    late.close();
  });
});
