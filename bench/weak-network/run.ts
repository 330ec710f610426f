/**
 * Weak-network scenario (issue 4): SDK clients talk to the real server through a proxy that
 * drops downlink frames, adds delay and cuts connections on a seeded schedule. Checks that
 * every message reaches every recipient exactly once and in order, and prints arrival and
 * compensation arrival times plus the server's retry counts.
 *
 *   npm run bench:weak -- --clients 20 --messages 10000 --drop 0.03 --cut-every 20 --strategy adaptive --seed 7
 *
 * Exit code 1 when a message is missing, duplicated or out of order (seq gaps, or a sender's
 * messages stored out of the order it sent them).
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { MagpieClient, MemoryStore, type LocalMessage, type WebSocketLike } from '@magpie/sdk';
import { startServer, registerAndLogin, type BenchAccount as Account } from '../lib/server.ts';
import { FlakyProxy } from './flaky-proxy.ts';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '20' },
    messages: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '500' },
    drop: { type: 'string', default: '0.03' },
    'cut-every': { type: 'string', default: '20' },
    delay: { type: 'string', default: '20' },
    jitter: { type: 'string', default: '30' },
    strategy: { type: 'string', default: 'adaptive' },
    seed: { type: 'string', default: '7' },
    'settle-timeout': { type: 'string', default: '120' },
    json: { type: 'boolean', default: false },
  },
});

const N = Number(args.clients);
const TOTAL = Number(args.messages);
const RATE = Number(args.rate);
const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

interface Sent {
  from: number;
  to: number;
  at: number;
}

async function main(): Promise<void> {
  const srv = await startServer({
    env: {
      MAGPIE_USER_RATE: '100000',
      MAGPIE_USER_BURST: '100000',
      MAGPIE_IP_RATE: '100000',
      MAGPIE_IP_BURST: '100000',
      MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
      MAGPIE_RETRY_STRATEGY: args.strategy!,
      // Fixed baseline as the write-up measured it (10 s × 6); adaptive: probes at 1 s, then 2 s + 2 s steps.
      MAGPIE_RETRY_FIXED_MS: '10000',
      MAGPIE_RETRY_PROBE_MS: '1000',
      MAGPIE_RETRY_STEPPED_START_MS: '2000',
      MAGPIE_RETRY_STEP_MS: '2000',
      MAGPIE_RETRY_MAX_MS: '10000',
      MAGPIE_RETRY_MAX_ATTEMPTS: '8',
    },
  });
  const proxy = new FlakyProxy({
    upstream: srv.wsUrl.replace(/\/ws$/, ''),
    seed: Number(args.seed),
    downlinkDrop: Number(args.drop),
    delayMs: Number(args.delay),
    jitterMs: Number(args.jitter),
    meanCutIntervalMs: Number(args['cut-every']) * 1000,
  });
  const proxyUrl = (await proxy.listen()) + '/ws';
  const dropped = new Map<string, number>();
  proxy.onDroppedMsg = (id, at) => {
    if (!dropped.has(id)) dropped.set(id, at);
  };

  const accounts: Account[] = [];
  for (let i = 0; i < N; i++) accounts.push(await registerAndLogin(srv.url, { username: `weak${i}_${Date.now().toString(36)}` }));
  const sent = new Map<string, Sent>(); // clientMsgId → sender, recipient, time
  const arrived: Map<string, number>[] = accounts.map(() => new Map()); // per recipient: clientMsgId → first arrival
  const byId = new Map<string, string>(); // server message id → clientMsgId
  const duplicates: string[] = [];
  const clients = accounts.map(
    (acc, i) =>
      new MagpieClient({
        url: proxyUrl,
        token: acc.token,
        store: new MemoryStore(),
        webSocketFactory: (u) => new WebSocket(u) as unknown as WebSocketLike,
        app: { platform: 'android', version: 'weak-net' },
        // The SDK's shipped timeouts (request, sync pull, send); only the give-up limits are raised
        // so that a long run never marks a message failed.
        sendQueue: { maxAttempts: 1000, maxAgeMs: 10 * 60_000 },
      }),
  );
  clients.forEach((c, i) =>
    c.on('message', (m: LocalMessage) => {
      if (m.own || m.kind !== 'custom') return;
      const cid = m.clientMsgId;
      const seen = arrived[i]!;
      if (seen.has(cid)) return; // the SDK reports state changes too; duplicates are checked in the store below
      seen.set(cid, Date.now());
      if (m.id) byId.set(m.id, cid);
    }),
  );
  await Promise.all(clients.map((c) => c.connect()));

  // Pairs chat both ways: client 2k ↔ 2k+1. Messages carry their send time.
  const started = Date.now();
  const interval = 1000 / RATE;
  for (let k = 0; k < TOTAL; k++) {
    const from = k % N;
    const to = from % 2 === 0 ? from + 1 : from - 1;
    const due = started + k * interval;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const m = await clients[from]!.send({ to: accounts[to]!.userId, kind: 'custom', body: { type: 'bench', data: { k } } });
    sent.set(m.clientMsgId, { from, to, at: Date.now() });
  }
  const sendSeconds = (Date.now() - started) / 1000;

  // Wait until every recipient has every message (or time out).
  const deadline = Date.now() + Number(args['settle-timeout']) * 1000;
  const missing = () => [...sent.entries()].filter(([cid, s]) => !arrived[s.to]!.has(cid)).length;
  while (missing() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const lost = missing();
  // Senders' own copies: an outgoing record is replaced by the stored message once its inbox
  // position is merged; wait for that too before checking each store.
  const unsettled = () => clients.reduce((n, c) => n + c.outgoing().length, 0);
  while (unsettled() > 0 && Date.now() < deadline) {
    for (const c of clients) void c.refresh().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
  }

  // Exactly once and in order: each recipient's local store holds each conversation gap-free.
  let orderErrors = 0;
  // Typing order: each sender's messages appear in the conversation in the order it sent them.
  let typingOrderBreaks = 0;
  for (let i = 0; i < N; i++) {
    for (const e of await clients[i]!.getConversations()) {
      const w = await clients[i]!.getMessages(e.conv, { after: 0, limit: 100_000 });
      const seqs = w.messages.map((m) => m.seq ?? -1);
      const expected = Array.from({ length: e.lastSeq }, (_, j) => j + 1);
      if (seqs.length !== expected.length || seqs.some((s, j) => s !== expected[j])) orderErrors++;
      const lastK = new Map<string, number>();
      for (const m of w.messages) {
        const k = (m.body as { data?: { k?: number } } | null)?.data?.k;
        if (typeof k !== 'number') continue;
        if (k < (lastK.get(m.sender) ?? -1)) typingOrderBreaks++;
        lastK.set(m.sender, k);
      }
      const ids = w.messages.map((m) => m.id);
      if (new Set(ids).size !== ids.length) duplicates.push(e.conv);
    }
  }

  const arrivals: number[] = [];
  const compensation: number[] = [];
  const droppedCids = new Set([...dropped.keys()].map((id) => byId.get(id)).filter((x): x is string => !!x));
  for (const [cid, s] of sent) {
    const at = arrived[s.to]!.get(cid);
    if (at === undefined) continue;
    arrivals.push(at - s.at);
    if (droppedCids.has(cid)) compensation.push(at - s.at);
  }
  arrivals.sort((a, b) => a - b);
  compensation.sort((a, b) => a - b);
  const metrics = await (await fetch(srv.url + '/metrics')).text();
  const metric = (re: RegExp) => [...metrics.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  const result = {
    strategy: args.strategy,
    seed: Number(args.seed),
    clients: N,
    messages: TOTAL,
    sendSeconds: Number(sendSeconds.toFixed(1)),
    proxy: proxy.stats,
    delivered: TOTAL - lost,
    lost,
    duplicates: duplicates.length,
    orderErrors,
    typingOrderBreaks,
    arrivalMs: { p50: pct(arrivals, 50), p99: pct(arrivals, 99), max: arrivals.at(-1) },
    compensationMs: { count: compensation.length, p50: pct(compensation, 50), p99: pct(compensation, 99), max: compensation.at(-1) },
    server: {
      retriesSent: metric(/^magpie_retries_total\{[^}]*\} (\d+)/gm),
      firstAttemptAcked: metric(/^magpie_downlink_deliveries_total\{outcome="acked_first"\} (\d+)/gm),
      arrivedByRetry: metric(/^magpie_downlink_deliveries_total\{outcome="acked_retry"\} (\d+)/gm),
      arrivedByPull: metric(/^magpie_downlink_deliveries_total\{outcome="pulled"\} (\d+)/gm),
      handedToOfflinePush: metric(/^magpie_downlink_deliveries_total\{outcome="offline"\} (\d+)/gm),
    },
  };
  if (args.json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
  for (const c of clients) c.close();
  await proxy.close();
  await srv.stop();
  process.exit(lost === 0 && duplicates.length === 0 && orderErrors === 0 && typingOrderBreaks === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
