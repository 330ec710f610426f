/**
 * Issue 14 (web client) in the SDK view models, against the real server: drafts kept on
 * the device and on the server (a new chat view and another device see them), the send
 * rights of a muted member in words, mentions inserted by display name (CJK too) that carry
 * the id, the chat list's search by name and message text, and join-request counts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startServer, registerAndLogin, login, sleep, type Account, type ServerProcess } from '../../server/test/harness.ts';
import { MagpieClient } from '../src/client.ts';
import { GroupsApi } from '../src/groups.ts';
import { RestApi } from '../src/rest.ts';
import { SocialApi } from '../src/social.ts';
import { MemoryStore } from '../src/local-store.ts';
import { ChatViewModel, ConversationListViewModel, Directory, GroupViewModel, JoinRequestsViewModel, type DraftStore } from '../src/view-models/index.ts';

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface Device {
  account: Account;
  client: MagpieClient;
  directory: Directory;
  groups: GroupsApi;
  social: SocialApi;
  list: ConversationListViewModel;
}

const memDrafts = (): DraftStore & { map: Map<string, { text: string; synced: boolean }> } => {
  const map = new Map<string, { text: string; synced: boolean }>();
  return { map, load: (k) => map.get(k) ?? null, save: (k, d) => (d ? map.set(k, d) : map.delete(k)) };
};

describe('chat composer view models (issue 14)', { timeout: 120_000 }, () => {
  let srv: ServerProcess;
  const devices: Device[] = [];

  before(async () => {
    srv = await startServer({ env: { MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000', MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '5000' } });
  });
  after(async () => {
    for (const d of devices) d.client.close();
    await srv.stop();
  });

  async function device(account?: Account): Promise<Device> {
    const acc = account ?? (await registerAndLogin(srv.url, { platform: 'desktop' }));
    const client = new MagpieClient({ baseUrl: srv.url, token: acc.token, store: new MemoryStore(), webSocketFactory: (u) => new WebSocket(u) as never, app: { platform: 'desktop' } });
    const rest = new RestApi({ baseUrl: srv.url });
    const social = new SocialApi(rest, acc.token);
    const groups = new GroupsApi(rest, acc.token);
    await client.connect();
    const directory = new Directory({ social, groups });
    const d: Device = { account: acc, client, directory, groups, social, list: new ConversationListViewModel({ client, directory }) };
    devices.push(d);
    return d;
  }

  it('a draft survives leaving the chat (regression: reopening showed an empty composer and leaving deleted it)', async () => {
    const a = await device();
    const b = await device();
    const drafts = memDrafts();
    const chat = new ChatViewModel({ client: a.client, directory: a.directory, drafts }, { peer: b.account.userId });
    await chat.start();
    await chat.sendText('hi');
    await until('the conversation exists', () => a.list.getSnapshot().rows.length === 1);
    chat.dispose();
    const conv = a.list.getSnapshot().rows[0]!.conv;

    const again = new ChatViewModel({ client: a.client, directory: a.directory, drafts }, { conv });
    await again.start();
    assert.equal(again.getSnapshot().draft, '');
    await again.saveDraft('unfinished 草稿');
    again.dispose();
    await until('the list shows the draft', () => a.list.getSnapshot().rows[0]?.preview === 'Draft: unfinished 草稿');

    const third = new ChatViewModel({ client: a.client, directory: a.directory, drafts }, { conv });
    await third.start();
    assert.equal(third.getSnapshot().draft, 'unfinished 草稿', 'reopening shows the draft');
    third.dispose();

    // Another device of the same user sees it (the server keeps drafts in the conversation entry).
    const a2 = await device(await login(srv.url, a.account.username, 'dev2', 'desktop'));
    await until('the second device lists the chat', () => a2.list.getSnapshot().rows.length === 1);
    const other = new ChatViewModel({ client: a2.client, directory: a2.directory, drafts: memDrafts() }, { conv });
    await other.start();
    assert.equal(other.getSnapshot().draft, 'unfinished 草稿');
    other.dispose();

    // Sending clears it.
    const fourth = new ChatViewModel({ client: a.client, directory: a.directory, drafts }, { conv });
    await fourth.start();
    await fourth.sendText('unfinished 草稿, finished');
    await until('the draft is gone', () => !a.list.getSnapshot().rows[0]?.draft);
    fourth.dispose();

    // Search: by name, and the text of messages held here.
    await until('the sent message is stored and found', async () => {
      await a.list.search('finished');
      return a.list.getSnapshot().hits.some((h) => h.text === 'unfinished 草稿, finished' && h.conv === conv);
    });
    await a.list.search(b.account.username.slice(0, 4).toUpperCase());
    assert.deepEqual(a.list.getSnapshot().matches.map((r) => r.conv), [conv]);
    await a.list.search('草稿');
    assert.equal(a.list.getSnapshot().hits.length, 1);
    await a.list.search('');
    assert.deepEqual(a.list.getSnapshot().hits, []);
  });

  it('a muted member is told why and for how long; mentions insert display names and carry ids; join requests are counted', async () => {
    const a = await device();
    const b = await device();
    const c = await device();
    await b.social.updateProfile({ nickname: '张伟' });
    const info = await GroupViewModel.create(a, { name: 'Team', members: [b.account.userId] });
    const chatB = new ChatViewModel({ client: b.client, directory: b.directory, groups: b.groups }, { conv: info.conv });
    await chatB.start();
    await until('b can send', () => chatB.getSnapshot().sendBlocked === null && chatB.getSnapshot().draft !== null);
    await a.groups.mute(info.conv, b.account.userId, 12 * 60_000);
    await until('b is told it is muted', () => chatB.getSnapshot().sendBlocked === 'You are muted for 12 min.');
    assert.equal(await chatB.sendText('let me talk'), undefined, 'nothing is sent');
    await a.groups.mute(info.conv, b.account.userId, 0);
    await until('b may send again', () => chatB.getSnapshot().sendBlocked === null);
    await a.groups.update(info.conv, { muteAll: true, announcement: 'Read the rules' });
    await until('only admins', () => chatB.getSnapshot().sendBlocked === 'Only admins can send messages in this group.');
    assert.equal(chatB.getSnapshot().announcement, 'Read the rules');
    await a.groups.update(info.conv, { muteAll: false });
    chatB.dispose(); // an open chat reads (and so clears) its mentions

    const chatA = new ChatViewModel({ client: a.client, directory: a.directory, groups: a.groups }, { conv: info.conv });
    await chatA.start();
    const [who] = await chatA.mentionSuggestions('伟');
    assert.equal(who?.id, b.account.userId, 'a CJK display name matches by a part of it');
    const insert = chatA.pickMention(who!);
    assert.equal(insert, '@张伟 ');
    const sent = await chatA.sendText(`${insert}look`);
    assert.deepEqual(sent?.body, { text: '@张伟 look' });
    await until('b sees itself mentioned', () => b.list.getSnapshot().rows.some((r) => r.conv === info.conv && r.mentions > 0));

    // No polling: the server's join_request frames keep the count live.
    const requests = new JoinRequestsViewModel({ client: a.client, groups: a.groups });
    await requests.checkAll();
    await c.groups.join(info.conv, 'let me in');
    await until('the owner counts the request live', () => requests.getSnapshot().byConv[info.conv] === 1 && requests.getSnapshot().total === 1);
    await a.groups.approve(info.conv, c.account.userId);
    await until('the handled request leaves the count live', () => requests.getSnapshot().total === 0);
    const forB = new JoinRequestsViewModel({ client: b.client, groups: b.groups });
    await forB.checkAll();
    assert.equal(forB.getSnapshot().total, 0, 'a plain member sees no requests');
    for (const vm of [chatA, requests, forB]) vm.dispose();
  });
});
