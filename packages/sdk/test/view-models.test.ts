/**
 * The SDK's view models against the real server process (Node clients over `ws`): the
 * conversation list, a chat with paging, the jump to the oldest unread and read marking,
 * delivered state, groups with notices and mentions, contacts through live relation frames,
 * and super groups pulled by conversation seq after the welcome.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startServer, registerAndLogin, sleep, type Account, type ServerProcess } from '../../server/test/harness.ts';
import { MagpieClient } from '../src/client.ts';
import { GroupsApi } from '../src/groups.ts';
import { RestApi } from '../src/rest.ts';
import { SocialApi } from '../src/social.ts';
import { MemoryStore } from '../src/local-store.ts';
import { ChatViewModel, ConnectionViewModel, ContactsViewModel, ConversationListViewModel, Directory, GroupViewModel, findMentions, systemNoticeText, type ChatItem } from '../src/view-models/index.ts';

interface Device {
  account: Account;
  client: MagpieClient;
  directory: Directory;
  social: SocialApi;
  groups: GroupsApi;
  list: ConversationListViewModel;
  store: MemoryStore;
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const texts = (items: ChatItem[]) => items.filter((i) => i.type === 'message').map((i) => (i.type === 'message' ? i.text : ''));

describe('SDK view models against the real server', { timeout: 120_000 }, () => {
  let srv: ServerProcess;
  const devices: Device[] = [];

  before(async () => {
    srv = await startServer({ env: { MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000', MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '5000', MAGPIE_SUPER_GROUP_THRESHOLD: '3' } });
  });
  after(async () => {
    for (const d of devices) d.client.close();
    await srv.stop();
  });

  async function device(account?: Account, store = new MemoryStore()): Promise<Device> {
    const acc = account ?? (await registerAndLogin(srv.url, { platform: 'desktop' }));
    const client = new MagpieClient({ baseUrl: srv.url, token: acc.token, store, webSocketFactory: (u) => new WebSocket(u) as never, app: { platform: 'desktop' } });
    const rest = new RestApi({ baseUrl: srv.url });
    const social = new SocialApi(rest, acc.token);
    const groups = new GroupsApi(rest, acc.token);
    await client.connect();
    const directory = new Directory({ social, groups });
    const d: Device = { account: acc, client, directory, social, groups, list: new ConversationListViewModel({ client, directory }), store };
    devices.push(d);
    return d;
  }

  it('list, chat, delivered, read marking, paging and the jump to the oldest unread', async () => {
    const a = await device();
    const b = await device();
    const conn = new ConnectionViewModel(b.client);
    assert.equal(conn.getSnapshot().status, 'online');

    const chatA = new ChatViewModel({ client: a.client, directory: a.directory }, { peer: b.account.userId });
    await chatA.start();
    assert.equal(chatA.getSnapshot().kind, 'direct');
    await chatA.sendText('hello b');
    await until('b lists the chat with 1 unread', () => b.list.getSnapshot().rows[0]?.unread === 1);
    const row = b.list.getSnapshot().rows[0]!;
    assert.equal(row.preview, 'hello b');
    assert.equal(row.kind, 'direct');
    await until('the message is delivered', () => chatA.getSnapshot().items.some((i) => i.type === 'message' && i.message.state === 'delivered'));
    await until('the title is the nickname or username', () => b.list.getSnapshot().rows[0]!.title === a.account.username);

    for (let i = 1; i <= 44; i++) await a.client.send({ conv: row.conv, body: { text: `m${i}` } });
    await until('b has 45 unread', () => b.list.getSnapshot().rows[0]?.unread === 45);

    const chatB = new ChatViewModel({ client: b.client, directory: b.directory }, { conv: row.conv });
    chatB.setVisible(false);
    await chatB.start();
    let s = chatB.getSnapshot();
    assert.equal(texts(s.items).length, 30, 'the newest page');
    assert.equal(texts(s.items).at(-1), 'm44');
    assert.equal(s.firstUnreadSeq, 1);
    assert.ok(s.unreadAbove > 0 && s.hasOlder);
    assert.ok(s.items.some((i) => i.type === 'day'), 'a day separator');

    await chatB.jumpToOldestUnread();
    s = chatB.getSnapshot();
    assert.equal(texts(s.items)[0], 'hello b');
    assert.equal(s.atLatest, false);
    assert.equal(s.items.filter((i) => i.type === 'unread').length, 0, 'no divider above the very first message');
    await chatB.loadNewer();
    await chatB.loadNewer();
    assert.equal(chatB.getSnapshot().atLatest, true);
    assert.equal(texts(chatB.getSnapshot().items).length, 45);
    chatB.setVisible(true);
    await until('read marking clears the badge', () => b.list.getSnapshot().rows[0]?.unread === 0);

    // Paging older from a fresh window: the local store serves what it holds.
    const again = new ChatViewModel({ client: b.client, directory: b.directory }, { conv: row.conv });
    await again.start();
    assert.equal(texts(again.getSnapshot().items).length, 30);
    await again.loadOlder();
    assert.equal(texts(again.getSnapshot().items).length, 45);
    assert.equal(again.getSnapshot().hasOlder, false);

    // Pin and mute through the list.
    await b.list.pin(row.conv, true);
    await b.list.mute(row.conv, true);
    await until('pinned and muted', () => !!b.list.getSnapshot().rows[0]?.pinned && !!b.list.getSnapshot().rows[0]?.muted);
    for (const vm of [chatA, chatB, again, conn]) vm.dispose();
  });

  it('contacts follow live relation frames; a group shows notices, mentions and admin rights', async () => {
    const a = await device();
    const b = await device();
    const c = await device();
    const contactsA = new ContactsViewModel({ client: a.client, social: a.social, directory: a.directory });
    const contactsB = new ContactsViewModel({ client: b.client, social: b.social, directory: b.directory });
    await contactsA.search(b.account.username);
    assert.equal(contactsA.getSnapshot().results[0]?.relation, 'none');
    await contactsA.requestFriend(b.account.userId, 'hi');
    assert.equal(contactsA.getSnapshot().results[0]?.relation, 'outgoing');
    await until('b sees the request live', () => contactsB.getSnapshot().incoming.length === 1);
    await contactsB.accept(a.account.userId);
    await until('a sees the new friend', () => contactsA.getSnapshot().friends.some((f) => f.user.id === b.account.userId));

    const info = await GroupViewModel.create(a, { name: 'Planning', members: [b.account.userId, c.account.userId] });
    assert.equal(info.kind, 'group');
    assert.equal(a.directory.groupName(info.conv), 'Planning');
    const chatA = new ChatViewModel({ client: a.client, directory: a.directory, groups: a.groups }, { conv: info.conv });
    await chatA.start();
    await until('the creation notice', () => chatA.getSnapshot().items.some((i) => i.type === 'system' && i.text === 'You created the group “Planning”'));
    await until('c lists the group', () => c.list.getSnapshot().rows.some((r) => r.conv === info.conv && r.title === 'Planning'));

    // A mention by username: c's row counts it (the server's count, fetched after the message).
    await until('names known', () => a.directory.user(c.account.userId) !== undefined);
    await chatA.sendText(`@${c.account.username} can you do Friday?`);
    await until('c has a mention', () => c.list.getSnapshot().rows.find((r) => r.conv === info.conv)?.mentions === 1);
    assert.equal(b.list.getSnapshot().rows.find((r) => r.conv === info.conv)?.mentions, 0);
    assert.match(c.list.getSnapshot().rows.find((r) => r.conv === info.conv)!.preview, /can you do Friday/);

    // Admin rights: the owner makes b an admin and mutes c; c's view has no admin actions.
    const groupA = new GroupViewModel({ client: a.client, groups: a.groups, directory: a.directory }, info.conv);
    await until('members loaded', () => groupA.getSnapshot().members.length === 3);
    assert.equal(groupA.getSnapshot().myRole, 'owner');
    assert.ok(groupA.getSnapshot().canManage);
    await groupA.setRole(b.account.userId, 'admin');
    await groupA.mute(c.account.userId, 60_000);
    await groupA.setAnnouncement('Friday it is');
    const rowOf = (id: string) => groupA.getSnapshot().members.find((m) => m.userId === id)!;
    assert.equal(rowOf(b.account.userId).role, 'admin');
    assert.equal(rowOf(c.account.userId).muted, true);
    assert.equal(groupA.getSnapshot().info?.announcement, 'Friday it is');
    const groupC = new GroupViewModel({ client: c.client, groups: c.groups, directory: c.directory }, info.conv);
    await until('c loaded', () => groupC.getSnapshot().members.length === 3);
    assert.equal(groupC.getSnapshot().canManage, false);
    assert.ok(groupC.getSnapshot().members.every((m) => !m.canKick && !m.canMute && !m.canSetRole));

    // c is muted: the send fails with a reason and can be retried after the unmute.
    const chatC = new ChatViewModel({ client: c.client, directory: c.directory, groups: c.groups }, { conv: info.conv });
    await chatC.start();
    const sent = await chatC.sendText('me too');
    await until('the send failed', () => chatC.getSnapshot().items.some((i) => i.type === 'message' && i.message.clientMsgId === sent!.clientMsgId && i.message.state === 'failed'));
    await groupA.mute(c.account.userId, 0);
    await chatC.retry(sent!.clientMsgId);
    await until('the retry went through', () => chatC.getSnapshot().items.some((i) => i.type === 'message' && i.message.clientMsgId === sent!.clientMsgId && (i.message.state === 'sent' || i.message.state === 'delivered')));
    await until('notices in order', () => {
      const notices = chatC.getSnapshot().items.filter((i) => i.type === 'system').map((i) => (i.type === 'system' ? i.text : ''));
      return notices.some((n) => n.endsWith(`made ${b.account.username} an admin`)) && notices.some((n) => n.endsWith(' muted you')) && notices.some((n) => n.endsWith(' unmuted you'));
    });
    for (const vm of [contactsA, contactsB, chatA, chatC, groupA, groupC]) vm.dispose();
  });

  it('super groups: messages sent while a member was away are pulled by seq after the welcome', async () => {
    const owner = await device();
    const members = [await device(), await device(), await device()];
    const g = await owner.groups.create({ name: 'Big', members: members.map((m) => m.account.userId) });
    const info = await owner.groups.get(g.conv);
    assert.equal(info.kind, 'super', '4 members pass the threshold of 3');
    const away = members[0]!;
    await until('away has the group', async () => (await away.client.getConversation(g.conv)) !== undefined);
    away.client.close();
    for (let i = 1; i <= 5; i++) await owner.client.send({ conv: g.conv, body: { text: `while away ${i}` } });
    // The same store, a new client: the welcome lists the super group, the SDK pulls its history.
    const back = await device(away.account, away.store);
    await until('the messages are stored', async () => (await back.client.getMessages(g.conv)).messages.some((m) => (m.body as { text?: string }).text === 'while away 5'));
    await until('the list row moved', () => /while away 5/.test(back.list.getSnapshot().rows.find((r) => r.conv === g.conv)?.preview ?? ''));
    // Live: an `advanced` frame moves the row too.
    await owner.client.send({ conv: g.conv, body: { text: 'live one' } });
    await until('live super-group message', () => /live one/.test(back.list.getSnapshot().rows.find((r) => r.conv === g.conv)?.preview ?? ''));
  });

  it('format helpers: notices and mentions', () => {
    const nameOf = (id: string) => ({ u1: 'Ann', u2: 'Bob' })[id] ?? id;
    assert.equal(systemNoticeText({ event: 'members_invited', data: { users: ['u2'], by: 'u1' } }, nameOf), 'Ann invited Bob');
    // Big changes: the notice names the first 3 and says the count (issue 23).
    assert.equal(systemNoticeText({ event: 'members_invited', data: { users: ['u2', 'u3', 'u4'], count: 1000, by: 'u1' } }, nameOf), 'Ann invited Bob, u3, u4 and 997 others');
    assert.equal(systemNoticeText({ event: 'members_removed', data: { users: ['u2', 'u3', 'u4'], count: 4, by: 'u1' } }, nameOf), 'Ann removed Bob, u3, u4 and 1 other');
    assert.equal(systemNoticeText({ event: 'member_joined', data: { users: ['u2'], count: 1 } }, nameOf), 'Bob joined');
    assert.equal(systemNoticeText({ event: 'group_updated', data: { name: 'X', by: 'u1' } }, nameOf), 'Ann renamed the group to “X”');
    assert.equal(systemNoticeText({ event: 'member_left', data: { user: 'u2' } }, (id) => (id === 'u2' ? 'you' : id)), 'You left');
    const people = [
      { id: 'u1', username: 'ann', nickname: 'Ann' },
      { id: 'u2', username: 'bob', nickname: 'Bobby' },
    ];
    assert.deepEqual(findMentions('hey @bob and @Ann', people), ['u1', 'u2']);
    assert.equal(findMentions('hi @all', people), 'all');
    assert.equal(findMentions('mail me at x@bob.com', people), undefined);
  });
});
