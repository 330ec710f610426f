import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TelemetryReportSchema, type TelemetryReport } from '@magpie/protocol';
import { ConnectTelemetry, telemetryVersion } from '../src/telemetry.ts';
import type { FetchLike } from '../src/rest.ts';
import type { WebSocketLike } from '../src/transport/websocket.ts';
import { FakeClock } from './helpers/fake-clock.ts';
import { FakeServer } from './helpers/fake-server.ts';
import { harness } from './helpers/setup.ts';

test('the client reports its first connects in one batch: a refused attempt, then a success with connect, TLS and first-packet times', async () => {
  const clock = new FakeClock();
  const server = new FakeServer(clock);
  const posts: { url: string; auth?: string; body: TelemetryReport }[] = [];
  const fetch: FetchLike = async (url, init) => {
    posts.push({ url, auth: init?.headers?.authorization, body: JSON.parse(init!.body!) as TelemetryReport });
    return { ok: true, status: 200, text: async () => '{"accepted":2}' };
  };
  // The socket takes 40 ms to open and the hello answer 15 ms; the factory knows the TLS time.
  const factory = (url: string): WebSocketLike => {
    const mode = server.connectMode;
    server.connectMode = 'hang';
    const s = server.factory(url) as WebSocketLike & { open(): void; refuse(): void; tlsMs?: number };
    server.connectMode = mode;
    s.tlsMs = 25;
    clock.setTimeout(() => (mode === 'refuse' ? s.refuse() : s.open()), 40);
    return s;
  };
  server.connectMode = 'refuse';
  const h = harness({ baseUrl: 'http://srv:8080', fetch, webSocketFactory: factory, app: { platform: 'ios', version: '2.1.0 (build 7)' } }, server, clock);
  const done = h.client.connect();
  await clock.advance(45);
  server.connectMode = 'open';
  await clock.advanceUntil(() => h.client.state === 'online', 60_000, 5);
  await done;
  assert.equal(posts.length, 0, 'the batch waits a little for more samples');
  await clock.advance(2_000);
  assert.equal(posts.length, 1);
  const { url, auth, body } = posts[0]!;
  assert.equal(url, 'http://srv:8080/api/telemetry/connect');
  assert.equal(auth, `Bearer ${server.token}`);
  assert.ok(TelemetryReportSchema.safeParse(body).success, 'the server’s schema accepts it');
  assert.equal(body.platform, 'ios');
  assert.equal(body.appVersion, '2.1.0--build-7-');
  assert.equal(body.samples.length, 2);
  const [refused, ok] = body.samples;
  assert.deepEqual(refused, { sinceStartMs: 0, ok: false, failure: 'refused' });
  assert.equal(ok!.ok, true);
  assert.equal(ok!.connectMs, 40);
  assert.equal(ok!.tlsMs, 25);
  assert.ok(ok!.firstPacketMs !== undefined && ok!.firstPacketMs >= 0);
  assert.ok(ok!.sinceStartMs > 40);
  // Later reconnects (past the 30 s window) are not measured.
  await clock.advance(31_000);
  server.last.drop();
  await clock.advanceUntil(() => h.client.state === 'online', 60_000, 5);
  await clock.advance(5_000);
  assert.equal(posts.length, 1);
  assert.deepEqual(h.client.telemetry.pending, []);
  h.client.close();
});

test('ConnectTelemetry: window end flushes failures, a failed report is kept for the next batch, off sends nothing', async () => {
  const clock = new FakeClock();
  const sent: TelemetryReport[] = [];
  let fail = true;
  const t = new ConnectTelemetry(clock, { platform: 'android', appVersion: '1.0' }, async (r) => {
    if (fail) throw new Error('offline');
    sent.push(r);
  });
  t.start();
  const a = t.attempt();
  await clock.advance(10_000);
  a.failed('timeout');
  t.attempt().failed('dns');
  await clock.advance(20_001);
  assert.equal(sent.length, 0, 'the report failed');
  assert.equal(t.pending.length, 2, 'and is kept');
  fail = false;
  await t.flush();
  assert.deepEqual(sent[0]!.samples, [
    { sinceStartMs: 0, ok: false, failure: 'timeout' },
    { sinceStartMs: 10_000, ok: false, failure: 'dns' },
  ]);
  const late = t.attempt();
  late.opened();
  late.firstFrame();
  assert.deepEqual(t.pending, [], 'attempts after the window are not measured');

  const off = new ConnectTelemetry(clock, { platform: 'web', appVersion: '1' }, async (r) => void sent.push(r), { enabled: false });
  off.start();
  const x = off.attempt();
  x.opened();
  x.firstFrame();
  await off.flush();
  assert.equal(sent.length, 1);
  assert.equal(telemetryVersion(undefined), 'unknown');
  assert.equal(telemetryVersion('x'.repeat(40)).length, 32);
});
