import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RestApi } from '../http/rest.ts';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Store } from '../store/store.ts';
import type { PushConfig } from '../config/push-config.ts';
import type { PushStore } from './push-store.ts';
import { SqlPushStore } from './sql-push-store.ts';
import { importLegacyPushFile } from './legacy-import.ts';
import { openDatabase, type SqlEngine } from '../db/index.ts';
import type { Config } from '../config/config.ts';
import { PushFunnel } from './funnel.ts';
import { PushDispatcher } from './dispatcher.ts';
import { PushService, type DevicelessSync, type Presence } from './push-service.ts';
import { registerPushRoutes } from './routes.ts';
import { LoopGuard } from './loop-guard.ts';
import type { PushProviderAdapter } from './providers/provider.ts';
import { ApnsProvider } from './providers/apns.ts';
import { FcmProvider, type ServiceAccount } from './providers/fcm.ts';
import { WebPushProvider, generateVapidKeys } from './providers/webpush.ts';
import { WebhookProvider } from './providers/webhook.ts';
import type { PushLane, PushProviderName } from './types.ts';
import type { Bus, NodeLink } from '../bus/bus.ts';

export { PushService, type OfflinePush, type Presence } from './push-service.ts';

/**
 * Presence from the gateway's connection registry: who is connected on this node, and —
 * asked over the Bus — on the other nodes of the cluster (`onlineDevicesOf`). Built from
 * the registry, not the gateway, so push exists before the retry queue that hands off to it.
 */
export function registryPresence(
  registry: { of(userId: string): Iterable<{ principal?: { userId: string; deviceId: string } | null }>; all(): Iterable<{ principal?: { userId: string; deviceId: string } | null }> },
  bus?: { remotePresence(userIds: string[]): Promise<Map<string, string[]>> },
): Presence {
  const onlineDevices = (userId: string): string[] => {
    const out: string[] = [];
    for (const c of registry.of(userId)) if (c.principal) out.push(c.principal.deviceId);
    return out;
  };
  return {
    onlineDevices,
    async onlineDevicesOf(userIds) {
      const remote = bus ? await bus.remotePresence(userIds) : new Map<string, string[]>();
      const out = new Map<string, string[]>();
      for (const u of userIds) {
        const here = onlineDevices(u);
        const there = remote.get(u);
        const all = there && there.length > 0 ? [...here, ...there] : here;
        // Without duplicates (two connections of one device); no copies for the usual single device.
        out.set(u, all.length > 1 ? [...new Set(all)] : all);
      }
      return out;
    },
    *connected() {
      for (const c of registry.all()) if (c.principal) yield { userId: c.principal.userId, deviceId: c.principal.deviceId };
    },
  };
}
export type { PushStore } from './push-store.ts';

/** NodeLink.tellAll topic: "this user registered a push device" (payload: the user id). */
const DEVICE_TOPIC = 'push.device';
/**
 * How long a registration waits for the other nodes to confirm, without `deviceTellTimeoutMs`:
 * three default node heartbeats (1 s) and a half.
 */
const DEVICE_TELL_TIMEOUT_MS = 3500;

/**
 * The cluster's side of the push intake's memory of users without a device (DevicelessSync),
 * over NodeLink: a registration tells every node (tellAll) and waits for the live ones; a node
 * remembers only while pushDevicesTold (joined, NATS up, every peer of this release), and
 * forgets everyone when the nodes change or NATS drops (onChange). Undefined without a NodeLink.
 */
function clusterDevicelessSync(link: NodeLink | undefined, timeoutMs: number, log: Logger): DevicelessSync | undefined {
  if (!link?.tellAll || !link.hear || !link.onChange || !link.pushDevicesTold) return undefined;
  return {
    trusted: () => link.pushDevicesTold!(),
    async registered(userId) {
      const missing = await link.tellAll!(DEVICE_TOPIC, userId, timeoutMs);
      if (missing.length > 0) log.warn({ userId, nodes: missing }, 'push device registration not confirmed by every node');
    },
  };
}

export interface PushModule {
  service: PushService;
  store: PushStore;
  funnel: PushFunnel;
  dispatcher: PushDispatcher;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PushModuleDeps {
  /** The data dir (a legacy push.db there is imported once). */
  server: { dataDir: string };
  /** One node, no cluster (app.ts: the in-process Bus): users without a device may be remembered. */
  singleNode?: boolean;
  /**
   * The cluster Bus (absent on one node): a node whose dispatcher claims full batches tells the
   * others (a `push` event) and they claim from the shared queue at once (PushDispatcher.onBacklog).
   */
  bus?: Pick<Bus, 'publish' | 'subscribe' | 'nodes'>;
  /**
   * Cluster: how long a push-device registration waits for every live node to confirm that it
   * forgot the user (app.ts: three node heartbeats and a half — a node cut off from NATS
   * without knowing it yet notices within three, when the others' heartbeats stop, and then
   * forgets everyone).
   */
  deviceTellTimeoutMs?: number;
  /** The server's database (the push tables: migration 0005); needed unless `pushStore` is given. */
  db?: SqlEngine;
  config: PushConfig;
  store: Store;
  presence: Presence;
  registry: Registry;
  log: Logger;
  /** Overrides for tests. */
  pushStore?: PushStore;
  providers?: Partial<Record<PushProviderName, PushProviderAdapter>>;
  now?: () => number;
}

/**
 * The push store on the server's database `db` (SQLite file or the process's one PostgreSQL
 * pool). On SQLite, a push file of an older release (`push.sqliteFile`, default push.db) is
 * imported once first. Without `db` (tools, benchmarks) it opens and migrates the database
 * for `config` itself and closes it with the store.
 */
export async function openPushStore(
  config: Pick<Config, 'store' | 'dataDir' | 'sqliteSynchronous' | 'sqliteCheckpointMs' | 'pg'>,
  push: Partial<PushConfig> & Pick<PushConfig, 'sqliteFile'>,
  db?: SqlEngine,
  log?: Logger,
): Promise<PushStore> {
  const engine = db ?? (await openDatabase(config as Config));
  if (engine.dialect === 'sqlite' && push.sqliteFile !== 'magpie.db') {
    const file = join(config.dataDir, push.sqliteFile);
    const copied = await importLegacyPushFile(engine, file);
    if (copied !== null) log?.info({ file, rows: copied }, 'imported the push tables of an older release into the server database; the file is renamed *.imported');
  }
  const store = new SqlPushStore(engine);
  if (db) return store;
  return Object.assign(store, {
    close: async () => {
      await engine.close();
    },
  });
}

const fileOrText = (file: string | undefined, text: string | undefined): string | undefined => (file ? readFileSync(file, 'utf8') : text);

/** Provider adapters for the providers that have credentials (Web Push always: its keys are generated). */
export async function createProviders(config: PushConfig, store: PushStore, now?: () => number, log?: Logger): Promise<{ providers: Partial<Record<PushProviderName, PushProviderAdapter>>; vapidPublicKey: string }> {
  const providers: Partial<Record<PushProviderName, PushProviderAdapter>> = {};
  const timeoutMs = config.requestTimeoutMs;
  if (config.apns) {
    const key = fileOrText(config.apns.keyFile, config.apns.key);
    if (!key) throw new Error('push.apns needs keyFile or key (the .p8 signing key)');
    providers.apns = new ApnsProvider({
      teamId: config.apns.teamId,
      keyId: config.apns.keyId,
      key,
      topic: config.apns.topic,
      url: config.apns.url,
      sandboxUrl: config.apns.sandboxUrl,
      timeoutMs,
      ...(config.apns.caFile ? { ca: readFileSync(config.apns.caFile) } : {}),
      ...(now ? { now } : {}),
    });
  }
  if (config.fcm) {
    const sa = fileOrText(config.fcm.serviceAccountFile, config.fcm.serviceAccount);
    if (!sa) throw new Error('push.fcm needs serviceAccountFile or serviceAccount (the service account JSON)');
    providers.fcm = new FcmProvider({
      projectId: config.fcm.projectId,
      serviceAccount: JSON.parse(sa) as ServiceAccount,
      endpoint: config.fcm.endpoint,
      timeoutMs,
      ...(config.fcm.tokenUrl ? { tokenUrl: config.fcm.tokenUrl } : {}),
      ...(now ? { now } : {}),
    });
  }
  let vapid: { publicKey: string; privateKey: string };
  if (config.webpush.publicKey && config.webpush.privateKey) vapid = { publicKey: config.webpush.publicKey, privateKey: config.webpush.privateKey };
  else vapid = JSON.parse(await store.getOrCreateSecret('vapid', () => JSON.stringify(generateVapidKeys()))) as typeof vapid;
  providers.webpush = new WebPushProvider({
    subject: config.webpush.subject,
    publicKey: vapid.publicKey,
    privateKey: vapid.privateKey,
    timeoutMs,
    encryptThreads: config.webpush.encryptThreads,
    onEncryptorError: (err) => log?.error({ err }, 'web push encryption worker failed; encrypting on the event loop'),
    ...(now ? { now } : {}),
  });
  if (config.webhook) providers.webhook = new WebhookProvider({ url: config.webhook.url, secret: config.webhook.secret, timeoutMs });
  return { providers, vapidPublicKey: vapid.publicKey };
}

/**
 * Build offline push: its store, providers, funnel, dispatcher, service and routes. The
 * caller wires `service.onCommitted` to the messaging service, `service.unbindSessions`
 * to logout, and `service` as the retry queue's offline handoff.
 */
export async function createPushModule(api: RestApi, deps: PushModuleDeps): Promise<PushModule> {
  const { config, log } = deps;
  if (!deps.pushStore && !deps.db) throw new Error('createPushModule needs the server database (db) or a pushStore');
  const store = deps.pushStore ?? (await openPushStore(deps.server as Config, config, deps.db, log));
  // Providers keep real time: credentials (JWT iat/exp) are checked against the real clock.
  const made = await createProviders(config, store, undefined, log);
  const providers = deps.providers ?? made.providers;
  const receiptKey = Buffer.from(config.receiptKey ?? (await store.getOrCreateSecret('receipt-key', () => randomBytes(32).toString('base64url'))), 'base64url');
  const funnel = new PushFunnel(deps.registry, store, deps.now, log);
  const guard = config.lanes.bulkYieldLagMs > 0 && config.enabled ? new LoopGuard(config.lanes.bulkYieldLagMs) : undefined;
  if (guard) {
    new Gauge({
      name: 'magpie_push_bulk_rate_factor',
      help: 'Share of the bulk lane rate in use (below 1 while the event loop lags: bulk yields to live chat)',
      registers: [deps.registry],
      collect() {
        this.set(guard.factor);
      },
    });
  }
  // Cluster: a node remembers users without a push device (no push_devices read per message
  // for them) only while every registration anywhere reaches it before it is answered.
  const devicelessSync = clusterDevicelessSync(deps.bus?.nodes, deps.deviceTellTimeoutMs ?? DEVICE_TELL_TIMEOUT_MS, log);
  const service = new PushService({
    config,
    store: deps.store,
    pushStore: store,
    presence: deps.presence,
    providers,
    funnel,
    log,
    receiptKey,
    vapidPublicKey: made.vapidPublicKey,
    cacheDeviceless: deps.singleNode === true || devicelessSync !== undefined,
    ...(devicelessSync ? { devicelessSync } : {}),
    ...(guard ? { guard } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const dispatcher = new PushDispatcher(
    store,
    providers,
    funnel,
    service.buildMessage,
    {
      lanes: config.lanes,
      ...(guard ? { guard } : {}),
      maxAttempts: config.maxAttempts,
      backoffBaseMs: config.backoffBaseMs,
      backoffMaxMs: config.backoffMaxMs,
      leaseMs: config.leaseMs,
      retentionMs: config.retentionDays * 86_400_000,
      ...(deps.bus ? { onBacklog: (lane: PushLane) => deps.bus!.publish({ type: 'push', lane }) } : {}),
    },
    log,
    deps.now,
  );
  service.dispatcher = dispatcher;
  if (devicelessSync) {
    const link = deps.bus!.nodes!;
    // Before the node joins its scope (app.ts), so no node tells it anything unheard.
    link.hear!(DEVICE_TOPIC, (userId) => service.forgetDeviceless(userId));
    link.onChange!(() => service.dropDeviceless());
  }
  // Another node's backlog (its onBacklog): claim from the shared queue now.
  deps.bus?.subscribe((ev) => {
    if (ev.type === 'push') dispatcher.kick(ev.lane);
  });
  registerPushRoutes(api, { push: service, funnel, ...(deps.now ? { now: deps.now } : {}) });
  let started = false;
  return {
    service,
    store,
    funnel,
    dispatcher,
    async start() {
      if (started || !config.enabled) return;
      started = true;
      funnel.start();
      service.start();
      await dispatcher.start();
    },
    async stop() {
      await service.stop();
      await dispatcher.stop();
      await funnel.stop();
      guard?.stop();
      for (const p of Object.values(providers)) await p?.close();
      await store.close();
    },
  };
}
