import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { MagpieError } from '@magpie/protocol';
import { randomBytes } from 'node:crypto';
import { hashToken } from '../src/util/ids.ts';
import { openSqliteStore } from '../src/store/open.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import type { Bus } from '../src/bus/bus.ts';
import { AccountService, type Principal } from '../src/services/account-service.ts';
import { MessagingService } from '../src/services/message-service.ts';
import { createMetrics, type Metrics } from '../src/metrics.ts';
import { errorBody } from '../src/util/errors.ts';
import { PushConfigSchema, type PushConfig } from '../src/config/push-config.ts';
import { createPushModule, type PushModule } from '../src/push/index.ts';
import { RestApi } from '../src/http/rest.ts';
import type { PushStore } from '../src/push/push-store.ts';
import { sqlitePush } from './sql-engines.ts';
import { FakeApns } from '../src/testing/apns-server.ts';
import { FakeFcm } from '../src/testing/fcm-server.ts';
import { FakeWebPush } from '../src/testing/webpush-server.ts';
import { FakeWebhookRelay } from '../src/testing/webhook-relay.ts';

/** Online devices as the gateway would report them; tests flip them. */
export class FakePresence {
  private readonly online = new Map<string, Set<string>>();
  set(userId: string, deviceId: string, on: boolean): void {
    let s = this.online.get(userId);
    if (!s) this.online.set(userId, (s = new Set()));
    if (on) s.add(deviceId);
    else s.delete(deviceId);
  }
  onlineDevices(userId: string): string[] {
    return [...(this.online.get(userId) ?? [])];
  }
  *connected(): Iterable<{ userId: string; deviceId: string }> {
    for (const [userId, s] of this.online) for (const deviceId of s) yield { userId, deviceId };
  }
}

/** A controllable clock (ms since epoch). */
export class Clock {
  constructor(public t: number) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Fakes {
  apns: FakeApns;
  fcm: FakeFcm;
  webpush: FakeWebPush;
  webhook: FakeWebhookRelay;
}

export async function startFakes(): Promise<Fakes> {
  const [apns, fcm, webpush, webhook] = await Promise.all([new FakeApns().start(), new FakeFcm().start(), new FakeWebPush().start(), new FakeWebhookRelay().start()]);
  return { apns, fcm, webpush, webhook };
}

export async function stopFakes(f: Fakes): Promise<void> {
  await Promise.all([f.apns.stop(), f.fcm.stop(), f.webpush.stop(), f.webhook.stop()]);
}

/** Push settings pointing every provider at the fakes. */
export function fakeProviderConfig(f: Fakes): Record<string, unknown> {
  return {
    apns: { teamId: f.apns.teamId, keyId: f.apns.keyId, key: f.apns.privateKeyPem, topic: f.apns.topic, url: f.apns.url, sandboxUrl: f.apns.url, ...(f.apns.caFile ? { caFile: f.apns.caFile } : {}) },
    fcm: { projectId: f.fcm.projectId, serviceAccount: JSON.stringify(f.fcm.serviceAccount), endpoint: f.fcm.url },
    webpush: { subject: 'mailto:ops@magpie.test', allowedHosts: ['127.0.0.1'], allowInsecure: true },
    webhook: { url: f.webhook.url, secret: f.webhook.secret },
  };
}

export interface PushEnv {
  store: SqlStore;
  pushStore: PushStore;
  accounts: AccountService;
  messaging: MessagingService;
  metrics: Metrics;
  http: FastifyInstance;
  presence: FakePresence;
  push: PushModule;
  config: PushConfig;
  adminToken: string;
  /** Register + log in; the device starts online unless `offline`. */
  user(name: string, deviceId?: string, opts?: { platform?: 'ios' | 'android' | 'web'; offline?: boolean }): Promise<{ p: Principal; token: string; userId: string; username: string }>;
  login(username: string, deviceId: string, platform?: 'ios' | 'android' | 'web'): Promise<{ p: Principal; token: string }>;
  api(method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>;
  text(from: Principal, to: string, text: string, clientMsgId?: string): Promise<void>;
  /**
   * Many users without scrypt: user + live session + a registered push device, written
   * straight into the stores. Devices are offline. `device(i)` says how each registers.
   */
  fastUsers(n: number, device: (i: number) => { provider: 'apns' | 'fcm' | 'webpush' | 'webhook'; token: string; vendor?: 'huawei' }): Promise<string[]>;
  /** Wait until intake and both lanes are idle. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;

/**
 * `pushBus`: what createPushModule gets as the cluster Bus (nodes of one test sharing a queue
 * and a bus, e.g. a MemoryBus); absent: one node.
 */
export async function pushEnv(opts: { fakes: Fakes; push?: Record<string, unknown>; now?: () => number; pushStore?: PushStore; pushBus?: Pick<Bus, 'publish' | 'subscribe'> } ): Promise<PushEnv> {
  const store = await openSqliteStore({ path: ':memory:', ringCapacity: 1000 });
  const bus = new MemoryBus();
  const accounts = new AccountService(store, bus, { tokenTtlMs: 3600_000, devicesPerPlatformClass: 5 });
  const metrics = createMetrics();
  const messaging = new MessagingService(store, bus, metrics, { ringCapacity: 1000, syncGapThreshold: 500, syncPageSize: 200, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 100 });
  const http = Fastify() as unknown as FastifyInstance;
  http.setErrorHandler((err, _req, reply) => {
    const e = err instanceof MagpieError ? err : new MagpieError((err as { statusCode?: number }).statusCode === 400 ? 'invalid' : 'internal', (err as Error).message);
    void reply.code(e.status).send(errorBody(e));
  });
  const presence = new FakePresence();
  const config = PushConfigSchema.parse({ backoffBaseMs: 20, backoffMaxMs: 200, collapseWindowMs: 300, quietHours: null, ...fakeProviderConfig(opts.fakes), ...opts.push });
  const adminToken = 'admin-token-0123456789abcdef';
  const pushStore = opts.pushStore ?? (await sqlitePush());
  const push = await createPushModule(new RestApi(http, accounts, adminToken), {
    server: { dataDir: '/nonexistent' },
    singleNode: opts.pushBus === undefined,
    ...(opts.pushBus ? { bus: opts.pushBus } : {}),
    config,
    store,
    presence,
    registry: metrics.registry,
    log: pino({ level: process.env.PUSH_TEST_LOG ?? 'silent' }),
    pushStore,
    ...(opts.now ? { now: opts.now } : {}),
  });
  messaging.onCommitted(push.service.onCommitted);
  accounts.onSessionsEnded((sessions) => push.service.unbindSessions(sessions));
  await push.start();
  opts.fakes.webpush.expectedVapidKey = push.service.vapidPublicKey;

  const login = async (username: string, deviceId: string, platform: 'ios' | 'android' | 'web' = 'ios') => {
    const r = await accounts.login({ username, password: 'correct horse', deviceId, platform });
    return { p: await accounts.authenticate(r.token), token: r.token };
  };
  const env: PushEnv = {
    store,
    pushStore,
    accounts,
    messaging,
    metrics,
    http,
    presence,
    push,
    config,
    adminToken,
    async user(name, deviceId = 'phone', o = {}) {
      const username = `${name}${++seq}`;
      const u = await accounts.register(username, 'correct horse', name);
      const { p, token } = await login(username, deviceId, o.platform ?? 'ios');
      presence.set(u.id, deviceId, !o.offline);
      return { p, token, userId: u.id, username };
    },
    login,
    async api(method, url, body, token) {
      const res = await http.inject({
        method,
        url,
        ...(body !== undefined ? { payload: body as object } : {}),
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
    },
    async text(from, to, text, clientMsgId) {
      await messaging.send(from, { clientMsgId: clientMsgId ?? `c${++seq}`, to, kind: 'text', body: { text } });
    },
    async fastUsers(n, device) {
      const ids: string[] = [];
      const now = Date.now();
      const tag = randomBytes(4).toString('hex');
      for (let i = 0; i < n; i++) {
        const id = `fu${tag}${i}`;
        await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: now });
        await store.createSession({ tokenHash: hashToken(`${id}-t`), userId: id, deviceId: 'phone', platform: 'android', appVersion: '', createdAt: now, expiresAt: now + 3600_000 });
        const d = device(i);
        await pushStore.upsertDevice({ userId: id, deviceId: 'phone', platform: 'android', provider: d.provider, token: d.token, vendor: d.vendor ?? null, sandbox: false, appVersion: '', locale: 'en', timeZone: 'UTC', permission: 'granted', now });
        ids.push(id);
      }
      return ids;
    },
    async settle() {
      await push.service.drained();
      await push.dispatcher.idle();
    },
    async close() {
      await push.stop();
      await http.close();
      await store.close();
    },
  };
  return env;
}
