import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { api, login, RawClient, registerAndLogin, sleep } from './harness.ts';
import { apnsToken } from '../src/testing/apns-server.ts';
import { fakeProviderConfig, startFakes, stopFakes, type Fakes } from './push-harness.ts';

const ADMIN = 'trace-e2e-admin-token-0123456789';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  service: string;
}

type KeyValue = { key: string; value: Record<string, unknown> };
interface RawSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: KeyValue[];
  events?: { name: string; attributes?: KeyValue[] }[];
}

/** OTLP/JSON ids are hex; tolerate base64 (the proto3 JSON mapping of bytes) too. */
const hexId = (x: unknown): string => (typeof x !== 'string' || x === '' ? '' : /^[0-9a-f]+$/.test(x) ? x : Buffer.from(x, 'base64').toString('hex'));
const attrs = (list: KeyValue[] = []) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

/** A real OTLP/HTTP receiver: decodes each ExportTraceServiceRequest (JSON) the server posts to /v1/traces. */
async function otlpReceiver(): Promise<{ server: Server; url: string; spans: OtlpSpan[]; requests: { path: string; type: string }[] }> {
  const spans: OtlpSpan[] = [];
  const requests: { path: string; type: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '' });
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { spans: RawSpan[] }[] }[] };
      for (const rs of body.resourceSpans) {
        const service = String(attrs(rs.resource.attributes)['service.name']);
        for (const ss of rs.scopeSpans)
          for (const s of ss.spans)
            spans.push({ traceId: hexId(s.traceId), spanId: hexId(s.spanId), parentSpanId: hexId(s.parentSpanId) || undefined, name: s.name, attributes: attrs(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })), service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, requests };
}

/**
 * One message traced end to end on a real server (in-process, SQLite) exporting spans to a
 * real OTLP/HTTP receiver: A sends to B, whose first browser ACKs, second browser never ACKs
 * (retried, then it goes away: handed to offline push) and phone is offline (pushed).
 */
describe('message trace: journal and OTLP spans (in-process server)', () => {
  let fakes: Fakes;
  let server: MagpieServer;
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let base: string;
  let wsUrl: string;
  let dataDir: string;
  before(async () => {
    fakes = await startFakes();
    receiver = await otlpReceiver();
    dataDir = mkdtempSync(join(tmpdir(), 'magpie-trace-e2e-'));
    const config = loadConfig({}, {
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logLevel: 'warn',
      adminToken: ADMIN,
      nodeId: 'trace-node',
      retry: { strategy: 'fixed', fixedDelayMs: 300 },
      push: { ...fakeProviderConfig(fakes), quietHours: null },
      tracing: { otlpEndpoint: receiver.url, serviceName: 'magpie-test' },
    });
    server = await createMagpieServer(config);
    base = (await server.start()).replace('localhost', '127.0.0.1');
    wsUrl = base.replace('http', 'ws') + '/ws';
  });
  after(async () => {
    await server?.stop();
    await stopFakes(fakes);
    receiver?.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('every stage is in the trace API, and the spans arrive over OTLP as one tree', async () => {
    const a = await registerAndLogin(base, { deviceId: 'a-desk', platform: 'desktop' });
    const b = await registerAndLogin(base, { deviceId: 'b-phone', platform: 'ios' });
    const bWeb1 = await login(base, b.username, 'b-web1', 'web');
    const bWeb2 = await login(base, b.username, 'b-web2', 'web');
    assert.equal((await api(base, 'PUT', '/api/push/device', { provider: 'apns', token: apnsToken(), locale: 'en' }, b.token)).status, 200);
    const { client: w1 } = await RawClient.connect(wsUrl, bWeb1.token);
    const { client: w2 } = await RawClient.connect(wsUrl, bWeb2.token);
    const { client: ca } = await RawClient.connect(wsUrl, a.token);

    const sent = await ca.request({ type: 'send', clientMsgId: 'traced-1', to: b.userId, kind: 'text', body: { text: 'follow me' } });
    const msgId: string = sent.message.id;
    const got1 = await w1.waitFor((f) => f.type === 'msg' && f.message.id === msgId);
    w1.send({ type: 'ack', inboxSeq: got1.inboxSeq });
    await w2.waitFor((f) => f.type === 'msg' && f.message.id === msgId);
    // w2 never ACKs: the retry comes after 300 ms; then it goes away and the next one finds it gone.
    const firstCount = w2.frames.length;
    await w2.waitFor((f) => f.type === 'msg' && f.message.id === msgId, 3000, firstCount);
    w2.close();
    await w2.waitClose();

    let trace: any;
    for (let i = 0; i < 60; i++) {
      trace = (await api(base, 'GET', `/api/admin/messages/${msgId}/trace`, undefined, ADMIN)).body;
      const stages = new Set((trace.events ?? []).map((e: any) => e.stage));
      if (stages.has('offline') && stages.has('push') && stages.has('ack')) break;
      await sleep(100);
    }
    const at = (stage: string, deviceId?: string) => trace.events.find((e: any) => e.stage === stage && (deviceId === undefined || e.deviceId === deviceId));
    assert.deepEqual(trace.nodes, ['trace-node']);
    for (const s of ['send', 'commit', 'fanout']) assert.ok(at(s), `stage ${s}: ${JSON.stringify(trace.events)}`);
    assert.equal(at('send').detail.outcome, 'ok');
    assert.ok(at('deliver', 'b-web1') && at('ack', 'b-web1'), 'web1 delivered and acknowledged');
    assert.ok(at('deliver', 'b-web2') && at('retry', 'b-web2') && at('offline', 'b-web2'), 'web2 delivered, retried, handed to push');
    assert.equal(at('retry', 'b-web2').attempt, 1);
    assert.equal(at('push', 'b-phone').detail.outcome, 'queued', 'the offline phone got a push job');
    assert.ok(trace.events.every((e: any) => e.node === 'trace-node'));
    const times = trace.events.map((e: any) => e.at);
    assert.deepEqual(times, [...times].sort((x: number, y: number) => x - y), 'oldest first');
    assert.ok(at('commit').at >= at('send').at && at('ack', 'b-web1').at >= at('deliver', 'b-web1').at);

    // The journal needs no token of a user; the trace API needs the operator's.
    assert.equal((await api(base, 'GET', `/api/admin/messages/${msgId}/trace`, undefined, a.token)).status, 401);
    assert.equal((await api(base, 'GET', '/api/admin/messages/m-unknown/trace', undefined, ADMIN)).status, 404);

    // Spans: one trace, magpie.send the root, everything else under it.
    await server.tracing.tracer.flush();
    const mine = () => {
      const root = receiver.spans.find((s) => s.name === 'magpie.send' && s.attributes['magpie.message'] === msgId);
      return root ? receiver.spans.filter((s) => s.traceId === root.traceId) : [];
    };
    for (let i = 0; i < 50 && !mine().some((s) => s.name === 'magpie.push'); i++) {
      await sleep(100);
      await server.tracing.tracer.flush();
    }
    assert.ok(receiver.requests.every((r) => r.path === '/v1/traces' && r.type.startsWith('application/json')), JSON.stringify(receiver.requests));
    const spans = mine();
    const root = spans.find((s) => s.name === 'magpie.send')!;
    assert.ok(root, `no send span among ${receiver.spans.map((s) => s.name)}`);
    assert.equal(root.parentSpanId, undefined);
    assert.equal(root.service, 'magpie-test');
    assert.equal(root.attributes['magpie.outcome'], 'ok');
    const children = (name: string) => spans.filter((s) => s.name === name);
    for (const name of ['magpie.commit', 'magpie.fanout']) {
      assert.equal(children(name).length, 1, name);
      assert.equal(children(name)[0]!.parentSpanId, root.spanId, `${name} is a child of the send`);
    }
    const delivers = children('magpie.deliver');
    assert.equal(delivers.length, 2, 'one deliver span per connected device');
    for (const d of delivers) assert.equal(d.parentSpanId, root.spanId);
    const byDevice = Object.fromEntries(delivers.map((d) => [d.attributes['magpie.device'], d]));
    assert.equal(byDevice['b-web1']!.attributes['magpie.outcome'], 'ack');
    assert.equal(byDevice['b-web2']!.attributes['magpie.outcome'], 'offline');
    assert.deepEqual(byDevice['b-web2']!.events.map((e: { name: string; attributes: Record<string, unknown> }) => [e.name, Number(e.attributes['magpie.attempt'])]), [['retry', 1]]);
    const push = children('magpie.push').find((p) => p.attributes['magpie.device'] === 'b-phone');
    assert.ok(push, 'push span of the offline phone');
    assert.equal(push.parentSpanId, root.spanId);
    ca.close();
    w1.close();
  });
});
