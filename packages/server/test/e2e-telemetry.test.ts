import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { MagpieClient, MemoryStore, type WebSocketLike } from '@magpie/sdk';
import { api, registerAndLogin, startServer, type ServerProcess } from './harness.ts';
import { eventually } from './sdk-client.ts';

/**
 * Client connect telemetry end to end: the real SDK connects to the real server and reports
 * its first connects; the server validates reports and aggregates them into Prometheus
 * metrics per platform and version, with bounded version labels.
 */
describe('client connect telemetry (server process + SDK)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_IP_RATE: '1000', MAGPIE_IP_BURST: '1000' } });
  });
  after(async () => {
    await srv?.stop();
  });
  const metrics = async () => (await fetch(`${srv.url}/metrics`)).text();

  it('the SDK’s report of its first connect lands in the metrics of its platform and version', async () => {
    const acc = await registerAndLogin(srv.url, { platform: 'android' });
    const client = new MagpieClient({
      baseUrl: srv.url,
      token: acc.token,
      store: new MemoryStore(),
      webSocketFactory: (u) => new WebSocket(u) as unknown as WebSocketLike,
      app: { platform: 'android', version: '4.2.0' },
      telemetry: { batchDelayMs: 50 },
    });
    await client.connect();
    await eventually(async () => /magpie_client_connects_total\{platform="android",version="4.2.0",outcome="success",failure=""\} 1/.test(await metrics()), 'the report reached the metrics');
    const text = await metrics();
    assert.match(text, /magpie_client_connect_seconds_count\{platform="android",version="4.2.0"\} 1/);
    assert.match(text, /magpie_client_first_packet_seconds_count\{platform="android",version="4.2.0"\} 1/);
    client.close();
  });

  it('validates reports, counts failures by reason, and buckets versions past the cap as `other`', async () => {
    const sample = { sinceStartMs: 100, ok: true, connectMs: 80, tlsMs: 30, firstPacketMs: 20 };
    const ok = await api(srv.url, 'POST', '/api/telemetry/connect', { platform: 'ios', appVersion: '9.9.9', samples: [sample, { sinceStartMs: 10, ok: false, failure: 'timeout' }] });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { accepted: 2 });
    for (const bad of [
      { platform: 'ios', appVersion: '9.9.9', samples: [] },
      { platform: 'ios', appVersion: 'has spaces', samples: [sample] },
      { platform: 'ios', appVersion: '9.9.9', samples: [{ ...sample, connectMs: 1e9 }] },
      { platform: 'ios', appVersion: '9.9.9', samples: [sample], extra: 1 },
    ]) {
      const r = await api(srv.url, 'POST', '/api/telemetry/connect', bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.error.code, 'invalid');
    }
    // 50 distinct versions at most (telemetry.maxVersions); the rest share `other`.
    for (let i = 0; i < 60; i++) await api(srv.url, 'POST', '/api/telemetry/connect', { platform: 'web', appVersion: `0.0.${i}`, samples: [sample] });
    const text = await metrics();
    assert.match(text, /magpie_client_connects_total\{platform="ios",version="9.9.9",outcome="failure",failure="timeout"\} 1/);
    assert.match(text, /magpie_client_tls_seconds_count\{platform="ios",version="9.9.9"\} 1/);
    const versions = new Set([...text.matchAll(/magpie_client_connect_seconds_count\{platform="[a-z]+",version="([^"]+)"\}/g)].map((m) => m[1]));
    assert.equal(versions.size, 51, 'fifty versions and other');
    assert.ok(versions.has('other'));
  });
});
