import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieClient, MagpieClientError, RestApi, wsUrlOf, type FetchLike } from '../src/index.ts';
import { harness, connectOnline } from './helpers/setup.ts';
import { flush } from './helpers/fake-clock.ts';

test('kicked: the `kicked` frame then close 4102 → kicked event and state, no reconnect', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.last.deliver({ type: 'kicked', reason: 'new_login', message: 'logged in on another phone' });
  h.server.last.serverClose(4102, 'kicked');
  await h.clock.advance(10);
  assert.equal(h.client.state, 'kicked');
  assert.deepEqual(h.events.kicked, [{ reason: 'new_login', message: 'logged in on another phone', code: 4102 }]);
  await h.clock.advance(600_000);
  assert.equal(h.server.sockets.length, 1, 'never reconnects by itself');
  h.client.setNetworkOnline(true);
  h.client.setAppState('background');
  h.client.setAppState('foreground');
  await h.clock.advance(10_000);
  assert.equal(h.server.sockets.length, 1, 'not even on network/foreground events');
});

test('close 4101 (token revoked) → logged_out; 4500-range and network closes → reconnect', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.last.serverClose(4500, 'heartbeat_timeout');
  await flush();
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  assert.equal(h.server.sockets.length, 2);
  h.server.last.serverClose(4502, 'shutting_down');
  await flush();
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  assert.equal(h.server.sockets.length, 3);
  h.server.last.deliver({ type: 'kicked', reason: 'logout', message: 'bye' });
  h.server.last.serverClose(4101, 'token_revoked');
  await h.clock.advance(10);
  assert.equal(h.client.state, 'logged_out');
  assert.equal(h.events.kicked[0]!.reason, 'logout');
  await h.clock.advance(60_000);
  assert.equal(h.server.sockets.length, 3);
});

test('a bad token: hello is answered `unauthorized` → logged_out, connect() rejects, error event', async () => {
  const h = harness({ token: 'wrong' });
  const p = h.client.connect().then(
    () => 'resolved',
    (e: MagpieClientError) => e.code,
  );
  await h.clock.advance(100);
  assert.equal(await p, 'unauthorized');
  assert.equal(h.client.state, 'logged_out');
  assert.ok(h.events.error.some((e) => e.code === 'unauthorized'));
  await h.clock.advance(60_000);
  assert.equal(h.server.sockets.length, 1);
  // a new token and connect() again
  h.client.setToken(h.server.token);
  await connectOnline(h);
  assert.equal(h.client.userId, 'me');
});

test('connect() rejects after 6 failed attempts; the client keeps trying', async () => {
  const h = harness();
  h.server.connectMode = 'refuse';
  const p = h.client.connect().then(
    () => 'resolved',
    (e: MagpieClientError) => e.code,
  );
  await h.clock.advance(120_000);
  assert.equal(await p, 'network');
  assert.equal(h.client.state, 'offline');
  assert.equal(h.client.connection.offlineReason, 'server_unreachable');
  assert.equal(h.server.sockets.length, 7, 'the first attempt and five retries: 6 failures; then one a minute');
  h.server.connectMode = 'open';
  await h.clock.advanceUntil(() => h.client.state === 'online', 61_000, 100);
});

test('close(): no reconnect; the pending ACK is flushed first', async () => {
  const h = harness({ sync: { ackDelayMs: 1_000 } });
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'x');
  await h.clock.advance(10);
  assert.deepEqual(h.server.acks, []);
  h.client.close();
  await flush();
  assert.deepEqual(h.server.acks, [1]);
  assert.equal(h.client.state, 'offline');
  await h.clock.advance(600_000);
  assert.equal(h.server.sockets.length, 1);
});

test('another user on the same store: the old user\'s data is cleared and rebuilt (full sync)', async () => {
  const h = harness();
  h.server.incoming('g', 'bob', 'for me', { push: false });
  await connectOnline(h);
  assert.equal((await h.client.getConversations()).length, 1);
  h.client.close();
  const { FakeServer } = await import('./helpers/fake-server.ts');
  const other = new FakeServer(h.clock, { userId: 'alice', token: 'tok-a' });
  other.conv('alice-only');
  const h2 = harness({ store: h.store, token: 'tok-a' }, other, h.clock);
  await connectOnline(h2);
  assert.equal(h2.client.userId, 'alice');
  assert.deepEqual((await h2.client.getConversations()).map((e) => e.conv), ['alice-only']);
  assert.deepEqual((await h2.client.getMessages('g')).messages, []);
  assert.equal((await h.store.loadMeta()).userId, 'alice');
});

test('server `error` frames without an id and unreadable frames surface as `error` events', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.last.deliver({ type: 'error', code: 'rate_limited', message: 'easy', retryAfterMs: 100 });
  await flush();
  h.server.last.onmessage?.({ data: '{{{' });
  h.server.last.deliver({ type: 'future_frame', x: 1 });
  await h.clock.advance(10);
  assert.deepEqual(h.events.error.map((e) => e.code), ['rate_limited', 'bad_response']);
  assert.equal(h.client.state, 'online');
});

test('a throwing listener does not break the client', async () => {
  const seen: unknown[] = [];
  const h = harness({ onListenerError: (err) => seen.push(err) });
  h.client.on('message', () => {
    throw new Error('app bug');
  });
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'x');
  h.server.incoming('g', 'bob', 'y');
  await h.clock.advance(100);
  assert.equal(h.client.inboxSeq, 2);
  assert.equal(seen.length, 2);
  assert.equal(h.events.message.length, 2, 'other listeners still called');
});

test('on() returns an unsubscribe function; once() fires once', async () => {
  const h = harness();
  const states: string[] = [];
  const off = h.client.on('state', (e) => states.push(e.state));
  let onceCount = 0;
  h.client.once('state', () => onceCount++);
  await connectOnline(h);
  off();
  h.client.close();
  assert.deepEqual(states, ['connecting', 'authenticating', 'syncing', 'online']);
  assert.equal(onceCount, 1);
});

test('wsUrlOf derives the socket URL from the HTTP origin', () => {
  assert.equal(wsUrlOf('http://localhost:8080'), 'ws://localhost:8080/ws');
  assert.equal(wsUrlOf('https://im.example.com/'), 'wss://im.example.com/ws');
});

// ---- REST

function fakeFetch(routes: Record<string, (body: unknown, headers: Record<string, string>) => { status: number; body: unknown }>) {
  const calls: { url: string; method: string; headers: Record<string, string>; body: unknown }[] = [];
  const f: FetchLike = async (url, init) => {
    const method = init?.method ?? 'GET';
    const body = init?.body ? JSON.parse(init.body) : undefined;
    calls.push({ url, method, headers: init?.headers ?? {}, body });
    const path = url.replace(/^https?:\/\/[^/]+/, '');
    const route = routes[`${method} ${path}`];
    if (!route) return { ok: false, status: 404, text: async () => JSON.stringify({ error: { code: 'not_found', message: 'no route' } }) };
    const r = route(body, init?.headers ?? {});
    return { ok: r.status < 400, status: r.status, text: async () => JSON.stringify(r.body) };
  };
  return { f, calls };
}

test('REST: register, login, logout with bearer token; errors carry code, status and retryAfterMs', async () => {
  const { f, calls } = fakeFetch({
    'POST /api/register': (b) => {
      const body = b as { username: string };
      return body.username === 'taken'
        ? { status: 409, body: { error: { code: 'conflict', message: 'username taken' } } }
        : { status: 201, body: { user: { id: 'u1', username: body.username, nickname: body.username } } };
    },
    'POST /api/login': (b) =>
      (b as { password: string }).password === 'right'
        ? { status: 200, body: { token: 'T', userId: 'u1', deviceId: (b as { deviceId: string }).deviceId, expiresAt: 9 } }
        : { status: 429, body: { error: { code: 'rate_limited', message: 'wait', retryAfterMs: 3000 } } },
    'POST /api/logout': (_b, headers) => (headers.authorization === 'Bearer T' ? { status: 200, body: { ok: true } } : { status: 401, body: { error: { code: 'unauthorized', message: 'no' } } }),
  });
  const opts = { baseUrl: 'http://srv:8080/', fetch: f };
  const reg = await MagpieClient.register(opts, { username: 'ann', password: 'pw12345678' });
  assert.equal(reg.user.username, 'ann');
  await assert.rejects(MagpieClient.register(opts, { username: 'taken', password: 'x' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'conflict' && e.status === 409);
  await assert.rejects(
    MagpieClient.login(opts, { username: 'ann', password: 'wrong', deviceId: 'd1', platform: 'web' }),
    (e: unknown) => e instanceof MagpieClientError && e.code === 'rate_limited' && e.retryAfterMs === 3000 && e.retryable,
  );
  // instance login keeps the token and a generated device id
  const h = harness({ baseUrl: 'http://srv:8080', fetch: f, token: undefined, app: { platform: 'web', version: '1.2.3' } });
  const res = await h.client.login({ username: 'ann', password: 'right' });
  assert.equal(res.token, 'T');
  const loginCall = calls.find((c) => c.url === 'http://srv:8080/api/login' && (c.body as { password: string }).password === 'right')!;
  assert.deepEqual(loginCall.body, { username: 'ann', password: 'right', deviceId: 'cm-1', platform: 'web', appVersion: '1.2.3' });
  assert.equal((await h.store.loadMeta()).deviceId, 'cm-1');
  await h.client.logout();
  assert.equal(h.client.state, 'logged_out');
  assert.equal(calls[calls.length - 1]!.headers.authorization, 'Bearer T');
});

test('REST: a network failure is `network`, non-JSON success is `bad_response`', async () => {
  const down = new RestApi({ baseUrl: 'http://x', fetch: async () => Promise.reject(new Error('ECONNREFUSED')) });
  await assert.rejects(down.me('t'), (e: unknown) => e instanceof MagpieClientError && e.code === 'network' && e.retryable);
  const weird = new RestApi({ baseUrl: 'http://x', fetch: async () => ({ ok: true, status: 200, text: async () => '<html>' }) });
  await assert.rejects(weird.me('t'), (e: unknown) => e instanceof MagpieClientError && e.code === 'bad_response');
  const q = fakeFetch({ 'GET /api/conversations/g%2F1/messages?before=10&limit=5': () => ({ status: 200, body: { messages: [], lastSeq: 0, more: false } }) });
  const api = new RestApi({ baseUrl: 'http://x', fetch: q.f });
  const page = await api.messages('t', 'g/1', { before: 10, limit: 5 });
  assert.equal(page.more, false);
});

test('refresh(): pulls the inbox and the conversation list; offline it triggers a reconnect instead', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'silent', { push: false });
  h.server.updateEntry('g', { muted: true });
  await h.client.refresh();
  assert.equal(h.client.inboxSeq, 1);
  assert.equal((await h.client.getConversation('g'))?.muted, true);
  assert.equal(h.client.syncStats.pulls.manual, 1);
  h.server.connectMode = 'refuse';
  h.server.last.drop();
  await h.clock.advance(200_000);
  assert.equal(h.client.state, 'offline');
  const before = h.server.sockets.length;
  h.server.connectMode = 'open';
  await h.client.refresh();
  await h.clock.advanceUntil(() => h.client.state === 'online', 2_000, 10);
  assert.equal(h.server.sockets.length, before + 1);
});
