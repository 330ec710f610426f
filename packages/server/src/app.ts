import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { MagpieError, docsRoutes, type RawRestRoute, type RestRoute } from '@magpie/protocol';
import type { Config } from './config/config.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import type { Store } from './store/store.ts';
import { SqlStore } from './store/sql-store.ts';
import { startSqliteWriter } from './store/sqlite-writer.ts';
import type { Bus } from './bus/bus.ts';
import { MemoryBus } from './bus/memory-bus.ts';
import { Gauge } from 'prom-client';
import { GroupRouter } from './services/group-router.ts';
import { AccountService } from './services/account-service.ts';
import { MessagingService, type SendInput } from './services/message-service.ts';
import type { Principal } from './services/account-service.ts';
import { AckService } from './services/ack-service.ts';
import { WsGateway } from './gateway/ws-gateway.ts';
import { ConnectionRegistry } from './gateway/registry.ts';
import { registerApiRoutes } from './http/routes.ts';
import { RestApi, restRouteOf } from './http/rest.ts';
import { installIpLimit } from './http/ip-limit.ts';
import { lazyRequestLogger } from './http/request-logger.ts';
import { openApiDocument } from './http/openapi.ts';
import { registerGroupRoutes } from './http/group-routes.ts';
import { GroupChangeUsers } from './services/group-change-users.ts';
import { GroupService } from './services/group-service.ts';
import { InstructionService } from './instructions/instruction-service.ts';
import { openInstructionStore, registerInstructionRoutes } from './instructions/index.ts';
import type { InstructionStore } from './instructions/instruction-store.ts';
import { openDatabase, type SqlEngine } from './db/index.ts';
import { registerAdminUserRoutes } from './http/admin-user-routes.ts';
import { dropRelations, leaveAllGroups } from './services/account-cleanup.ts';
import { warmPasswordPolicy } from './util/password-policy.ts';
import { createWalletModule, openWalletStore, type WalletModule, type WalletStore } from './wallet/index.ts';
import { createPaymentsModule, createPinService, type PaymentProvider, type PaymentsModule } from './wallet/payments/index.ts';
import { claimFrames } from './wallet/claim-frames.ts';
import { createSocialModule, type SocialModule, type SocialStore } from './social/index.ts';
import { registerWebClient } from './http/web-client.ts';
import { createPushModule, registryPresence, type PushModule } from './push/index.ts';
import { RateLimiter } from './util/rate-limiter.ts';
import { UserLimits } from './util/user-limits.ts';
import { bearer } from './http/validation.ts';
import { apiServerOptions, installApiErrors } from './http/api-errors.ts';
import { registerSecurityHeaders } from './http/security-headers.ts';
import { registerMetricsEndpoint } from './http/metrics-endpoint.ts';
import { secureDataDir } from './util/data-dir.ts';
import type { OfflineHandoff } from './delivery/offline-handoff.ts';
import { createRetryQueue } from './delivery/retry-metrics.ts';
import { ConnectionGuard } from './http/connection-guard.ts';
import { connectionCap, openFileLimits } from './util/open-files.ts';
import { createMediaModule, type MediaModule } from './media/index.ts';
import { createWebhooksModule, type WebhooksModule } from './webhooks/index.ts';
import { createConsoleModule, type ConsoleModule } from './console/index.ts';
import { createReceiptsModule, type ReceiptsModule } from './receipts/index.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { createLogger } from './util/logger.ts';
import { registerUserDataRoutes } from './ops/user-data.ts';
import { hostname } from 'node:os';
import { createLifecycleModule, type LifecycleModule } from './lifecycle/index.ts';
import { createSearchModule, type SearchModule } from './search/index.ts';
import { createTracingModule, type TracingModule } from './tracing/index.ts';
import { createRetentionModule, type RetentionModule } from './retention/index.ts';
import { searchableText } from './search/extract.ts';
import { createNotificationsModule, type NotificationsModule } from './notifications/index.ts';

export interface MagpieServer {
  config: Config;
  store: Store;
  bus: Bus;
  metrics: Metrics;
  log: Logger;
  http: FastifyInstance;
  gateway: WsGateway;
  /** Wallets and red packets (src/wallet/). */
  wallet: WalletModule;
  /** Payment PIN, top-ups and withdrawals through the payment provider (src/wallet/payments/). */
  payments: PaymentsModule;
  /** Profiles, friends, blocks, the stranger policy (src/social/). */
  social: SocialModule;
  /** Offline push (src/push/): device registry, providers, queue, funnel. */
  push: PushModule;
  /** Every HTTP route registered (method, URL pattern), for the docs test. */
  routes: { method: string; url: string }[];
  /** Uploads and media (src/media/): tus, blob storage, thumbnails, access, GC. */
  media: MediaModule;
  /** Keyword filter, webhooks (before-send, after-events through the outbox), moderation reports (src/webhooks/). */
  webhooks: WebhooksModule;
  /** The admin console at /admin and /api/console/… (src/console/); null when `console.enabled` is false. */
  console: ConsoleModule | null;
  /** Read receipts, typing, presence, group notification levels (src/receipts/). */
  receipts: ReceiptsModule;
  /** This node's name (config nodeId, else host name and pid). */
  node: string;
  /** Reply, forward, recall, delete-for-me, edit, reactions (src/lifecycle/); hooks: `lifecycle.service.on(…)`. */
  lifecycle: LifecycleModule;
  /** Message search and subject conversations (src/search/). */
  search: SearchModule;
  /** Message traces (journal, optional OTLP spans) and client connect telemetry (src/tracing/). */
  tracing: TracingModule;
  /** Retention purge (one node at a time) and the operator's message actions (src/retention/). */
  retention: RetentionModule;
  /** Service accounts and notification conversations (src/notifications/). */
  notifications: NotificationsModule;
  /** Listen; resolves with the bound URL. */
  start(): Promise<string>;
  /**
   * Graceful drain (SIGTERM): readiness answers 503, new WebSocket upgrades are refused,
   * and after `drain.delayMs` every connection finishes its running requests and is closed
   * with 4506 and a jittered `retryAfterMs`. Call `stop()` afterwards.
   */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Store on the configured database, opened on its own (tools and benchmarks seeding a data
 * directory): migrates it and closes the database with the store. The server itself builds
 * its Store on the database it shares with every other store (see createMagpieServer).
 */
export async function openStore(config: Config): Promise<Store> {
  const db = await openDatabase(config);
  return new SqlStore(db, { ringCapacity: config.ringCapacity, unavailableWaitMs: config.pg.waitMs, ownsEngine: true });
}

/**
 * The nodes of one database form one cluster on the broker (NodeLink scope): the database's
 * name and the time its first migration ran, the same for every node that opens it.
 */
async function clusterScope(db: SqlEngine): Promise<string> {
  const first = await db.get<{ name: string; applied_at: number | string }>('SELECT name, applied_at FROM schema_migrations ORDER BY name LIMIT 1');
  const name = db.dialect === 'postgres' ? ((await db.get<{ db: string }>('SELECT current_database() AS db'))?.db ?? '') : '';
  return `${name}:${String(first?.applied_at ?? 0)}`;
}

/** The Bus: NATS when `nats` is set (a cluster of nodes), else in-process (one node). */
export async function openBus(config: Config, log?: Logger): Promise<Bus> {
  if (!config.nats) return new MemoryBus();
  const { NatsBus } = await import('./bus/nats-bus.ts');
  return NatsBus.connect({ servers: config.nats.split(',').map((s) => s.trim()), log: log?.child({ mod: 'bus' }) });
}

/** Wire one Magpie node: store → services → gateway and HTTP API. */
export async function createMagpieServer(config: Config, deps: { store?: Store; bus?: Bus; log?: Logger; offlineHandoff?: OfflineHandoff; instructionStore?: InstructionStore; wallet?: WalletStore; social?: SocialStore; paymentProvider?: PaymentProvider; processMetrics?: boolean } = {}): Promise<MagpieServer> {
  const node = config.nodeId ?? `${hostname()}-${process.pid}`;
  const log = deps.log ?? createLogger(config.logLevel, node);
  const metrics = createMetrics({ processMetrics: deps.processMetrics });
  let draining = false;
  // SQLite keeps everything in dataDir; with PostgreSQL only what an operator put there.
  secureDataDir(config.dataDir, { create: config.store === 'sqlite' });
  // The server's database, migrated to the current schema before any store uses it
  // (db/migrations; several nodes starting at once migrate under one lock).
  // application_name `magpie <node>`: pg_stat_activity shows which node holds which PostgreSQL backend.
  const db = await openDatabase(config, { log: (msg) => log.info(msg), warn: (msg) => log.warn(msg), applicationName: `magpie ${node}` });
  // The store keeps the search index in step with new messages: PostgreSQL in the message's own
  // group commit, SQLite by the deferred indexer after it (search/search-indexer.ts), into the
  // search file on a thread of its own (search/search-index-thread.ts).
  // SQLite: the group commit and the ACK flush run on a writer thread (store/sqlite-writer.ts).
  const writer = deps.store || !config.sqliteWriterThread ? undefined : await startSqliteWriter(db, { ringCapacity: config.ringCapacity, synchronous: config.sqliteSynchronous, warmUp: config.sqliteWriterWarmUp });
  const store = deps.store ?? new SqlStore(db, { ringCapacity: config.ringCapacity, unavailableWaitMs: config.pg.waitMs, searchText: searchableText, searchIndexDelayMs: config.searchIndexDelayMs, ...(writer ? { writer } : {}) });
  // SQLite: the search index thread (search/search-index-thread.ts) is up before the first send.
  if (store instanceof SqlStore) await store.searchIndex?.start();
  // PostgreSQL: warm the pool and the append / ACK-flush code before serving (rollback-only, store/pg-warmup.ts).
  if (config.pg.warmUp && store instanceof SqlStore && store.kind === 'postgres') {
    const w = await store.warmUp({ connections: Math.min(16, config.pg.pools.shared), warn: (msg, err) => log.warn({ err }, msg) });
    log.debug({ ms: Math.round(w.ms), messages: w.messages, ackFlushes: w.ackFlushes }, 'PostgreSQL warm-up done');
  }
  const bus = deps.bus ?? (await openBus(config, log));
  // One node (the in-process Bus): caches that another node's writes could make stale are allowed.
  const singleNode = bus instanceof MemoryBus;
  const tracing = await createTracingModule({ node, bus, registry: metrics.registry, tracing: config.tracing, telemetry: config.telemetry, log: log.child({ mod: 'tracing' }) });
  const a = config.auth;
  const accounts = new AccountService(store, bus, {
    tokenTtlMs: config.tokenTtlMs,
    devicesPerPlatformClass: config.devicesPerPlatformClass,
    minPasswordScore: a.minPasswordScore,
    hasher: { concurrency: a.hashConcurrency, queue: a.hashQueue },
    throttle: {
      freeFailures: a.loginFreeFailures,
      backoffBaseMs: a.loginBackoffBaseMs,
      backoffMaxMs: a.loginBackoffMaxMs,
      forgetAfterMs: a.loginForgetAfterMs,
      ipFailuresPerMinute: a.ipLoginFailuresPerMinute,
      ipFailureBurst: a.ipLoginFailureBurst,
    },
  });
  const messaging = new MessagingService(store, bus, metrics, {
    ringCapacity: config.ringCapacity,
    syncGapThreshold: config.syncGapThreshold,
    syncPageSize: config.syncPageSize,
    maxMessageBytes: config.limits.maxMessageBytes,
    commitDelayMs: config.commitDelayMs,
    maxBatch: config.maxBatch,
    overlapCommits: writer !== undefined,
    maxReplyBytes: config.limits.maxReplyBytes,
    storeWaitMs: config.pg.waitMs,
    tracer: tracing.tracer,
  });
  const acks = new AckService(store, bus, metrics, 20, config.ackFlushMinIntervalMs);
  const ipLimiter = new RateLimiter(config.limits.ipRate, config.limits.ipBurst);
  const userLimits = new UserLimits(config.limits);

  const { limits } = config;
  // Node's own request timeouts, checked every connectionsCheckingInterval (its default, 30 s, would let them run late).
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const timeouts = { headersTimeout, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))) };
  const https = config.tls ? { key: readFileSync(config.tls.keyFile), cert: readFileSync(config.tls.certFile), ...timeouts } : null;
  const http = Fastify({
    loggerInstance: log.child({ mod: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is made on first use (most requests never log): http/request-logger.ts.
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: limits.maxFrameBytes,
    // Idle sockets (no bytes either way) close after idleTimeoutMs; ws clears it on upgrade.
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Router refusals and Node's parser errors answered in the documented error shape.
    ...apiServerOptions(),
    ...(https ? { https } : { http: timeouts }),
  }) as unknown as FastifyInstance;
  http.server.headersTimeout = headersTimeout;
  const fds = openFileLimits();
  const maxConnections = connectionCap(limits.maxConnections, fds);
  new ConnectionGuard(http.server, { maxPerIp: limits.maxConnectionsPerIp, maxConnections }, (reason) => metrics.refusedConnections.inc({ reason }));
  log.info({ openFiles: fds, maxConnections, maxConnectionsPerIp: limits.maxConnectionsPerIp }, 'connection limits');
  if (fds && fds.soft < 4096) log.warn({ openFiles: fds }, `the open-file limit caps this process at about ${Math.max(0, fds.soft - 512)} connections; raise it (docs/operations.md)`);

  const routes: { method: string; url: string }[] = [];
  const restRoutes: (RestRoute | RawRestRoute)[] = [];
  http.addHook('onRoute', (r) => {
    const rest = restRouteOf(r);
    // HEAD routes fastify adds for GETs are left out; a declared HEAD route (tus) is listed.
    for (const method of [r.method].flat()) if (method !== 'HEAD' || rest?.method === 'HEAD') routes.push({ method, url: r.url });
    if (rest && [r.method].flat().includes(rest.method)) restRoutes.push(rest);
  });

  installApiErrors(http, { log, metrics, maxJsonDepth: config.limits.maxJsonDepth });
  await registerSecurityHeaders(http, { tls: https !== null });
  installIpLimit(http, ipLimiter);

  const metricsEndpoint = registerMetricsEndpoint(http, metrics, config.metrics);
  // The one REST helper of this server (http/rest.ts): every module registers its /api routes
  // through it (api.route for JSON routes, api.raw for tus and bytes), with auth and schemas.
  const api = new RestApi(http, accounts, config.adminToken, (userId) => userLimits.request(userId));
  registerApiRoutes(api, accounts, messaging);
  registerHealthRoutes(api, { node, db, store, bus, draining: () => draining });
  const groups = new GroupService(store, bus, messaging, config.groups, new GroupChangeUsers(db));
  registerGroupRoutes(api, groups);
  const instructionStore = deps.instructionStore ?? openInstructionStore(db);
  const instructions = new InstructionService(instructionStore, store, bus);
  registerInstructionRoutes(api, instructions);
  // Operator-token actions are audited too, once the console (which owns the log) exists.
  let auditSink: ((action: string, target: string, detail: unknown) => Promise<void>) | null = null;
  registerAdminUserRoutes(api, accounts, (action, target, detail) => auditSink?.(action, target, detail) ?? Promise.resolve());
  registerUserDataRoutes(api, store, accounts);
  accounts.onAccountDeleted((userId) => leaveAllGroups(store, groups, userId, log));
  // Red-packet kinds are server-only: the wallet posts them on the server path, so clients cannot forge one.
  const walletPoster = { send: (p: Principal, input: SendInput) => messaging.postAsServer(p, input), check: (p: Principal, target: { to: string } | { conv: string }) => messaging.checkSend(p, target) };
  // The payment PIN guards red-packet sends; top-ups and withdrawals go through the payment provider (wallet/payments/).
  const pinService = createPinService({ config, db, accounts });
  const walletStore = deps.wallet ?? (await openWalletStore(config, db));
  const wallet = await createWalletModule(api, {
    config,
    db,
    store,
    messaging: walletPoster,
    log: log.child({ mod: 'wallet' }),
    registry: metrics.registry,
    walletStore,
    guardSend: (userId, pin) => pinService.pins.guard(userId, pin),
    onOpened: claimFrames(walletStore, bus, log.child({ mod: 'wallet' })),
  });
  const payments = createPaymentsModule(api, { config, store: pinService.store, pins: pinService.pins, wallet: walletStore, provider: deps.paymentProvider, log: log.child({ mod: 'payments' }) });
  const social = await createSocialModule(api, { config, db, bus, messaging, socialStore: deps.social, singleNode });
  const media = await createMediaModule(api, { config, db, store, messaging, log: log.child({ mod: 'media' }) });
  // After media: a before-send hook sees the body the media hook completed.
  const webhooks = createWebhooksModule(api, { config, db, store, accounts, messaging, log: log.child({ mod: 'webhooks' }), registry: metrics.registry });
  const adminConsole = config.console.enabled
    ? createConsoleModule(http, api, { config, db, store, accounts, social: social.service, reports: webhooks.reports, wallet: wallet.wallet, groups, instructions, registry: metrics.registry })
    : null;
  if (adminConsole) auditSink = (action, target, detail) => adminConsole.service.audit('token', action, target, detail);
  tracing.routes(api, adminConsole ? (req) => adminConsole.service.authenticate(bearer(req), 'viewer') : undefined);
  const lifecycle = createLifecycleModule(api, { log: log.child({ mod: 'lifecycle' }), config, db, store, bus, messaging, media: media.service });
  const storeIndexes = store instanceof SqlStore && store.indexesSearch;
  const indexLag = store instanceof SqlStore && store.indexesSearchLater ? () => store.searchIndexLag()! : undefined;
  const search = createSearchModule(api, {
    db,
    store,
    messaging,
    log: log.child({ mod: 'search' }),
    storeIndexes,
    ...(storeIndexes && { syncIndex: () => store.syncSearchIndex() }),
    ...(indexLag && { indexLag, registry: metrics.registry }),
    ...(store instanceof SqlStore && store.searchIndex && { searchIndex: store.searchIndex }),
  });
  // The search index follows recalls, edits and deletions for me (each after it is durable).
  const indexLog = log.child({ mod: 'search' });
  const indexed = (p: Promise<void>) => void p.catch((err: unknown) => indexLog.warn({ err: (err as Error).message }, 'search index update failed (npm run search:backfill repairs it)'));
  lifecycle.service.on({
    onRecall: (conv, seq) => indexed(search.service.removeMessage(conv, seq)),
    onEdit: (conv, seq, text) => indexed(search.service.updateMessageText(conv, seq, 'text', { text })),
    onDeleteForMe: (userId, conv, seqs) => indexed(Promise.all(seqs.map((seq) => search.service.hideForUser(userId, conv, seq))).then(() => undefined)),
  });
  const retention = createRetentionModule(api, { config, db, store, node, registry: metrics.registry, lifecycle: lifecycle.service, console: adminConsole?.service ?? null, log: log.child({ mod: 'retention' }), ...(store instanceof SqlStore && store.searchIndex && { searchIndex: store.searchIndex }) });
  registerWebClient(http);
  let openApi: Record<string, unknown> | undefined;
  const docs = async () => (openApi ??= openApiDocument(restRoutes, routes, '1')) as { openapi: string; info: Record<string, unknown>; paths: Record<string, unknown> };
  api.route(docsRoutes.openapi, docs);
  api.route(docsRoutes.docs, docs);
  accounts.onAccountDeleted((userId) => dropRelations(social.service, userId, log));

  // Built in data-path order without a cycle: offline push reads presence from the connection
  // registry, the retry queue hands off to push, and the gateway uses both.
  const connections = new ConnectionRegistry();
  const presence = registryPresence(connections, bus);
  const push = await createPushModule(api, {
    server: config,
    singleNode,
    ...(singleNode ? {} : { bus, deviceTellTimeoutMs: 3.5 * config.groupRouting.heartbeatMs }),
    db,
    config: config.push,
    store,
    presence,
    registry: metrics.registry,
    log: log.child({ mod: 'push' }),
  });
  const receipts = createReceiptsModule(api, {
    config,
    db,
    store,
    bus,
    push: push.service,
    onlineDevicesOf: (users) => presence.onlineDevicesOf!(users),
    localDevices: (u) => connections.count(u),
    friends: async (a, b) => (await social.store.directCheck(a, b)).friends,
  });
  messaging.onCommitted(receipts.service.onCommitted);
  // Cluster: the push funnel counts a device-less user connected to another node as online
  // (the cluster's presence events, already heard by every node), not as "no_device".
  if (bus.nodes) presence.knownOnline = (u) => receipts.presence.knownOnline(u);
  // Cluster: a normal group's posts are appended by one owner node (services/group-router.ts).
  // (Only on PostgreSQL: nodes that share a database; SQLite is one node.)
  let router: GroupRouter | undefined;
  if (bus.nodes && config.groupRouting.enabled && db.dialect === 'postgres') {
    const link = bus.nodes;
    router = new GroupRouter(
      link,
      (p, input, x) => {
        // The owner's side of a forward: the send's receipt extras, as the gateway keeps them on the sender's node.
        if (x === undefined && input.mentions === undefined) return messaging.sendHere(p, input);
        receipts.service.beforeSend(p.userId, input.clientMsgId, { receipt: x?.receipt as boolean | undefined, mentions: input.mentions, replyTo: x?.replyTo as number | undefined });
        const sent = messaging.sendHere(p, input);
        void sent.finally(() => receipts.service.afterSend(p.userId, input.clientMsgId)).catch(() => undefined);
        return sent;
      },
      { timeoutMs: config.groupRouting.forwardTimeoutMs, log: log.child({ mod: 'group-router' }), count: (route) => metrics.groupPosts.inc({ route }) },
    );
    router.serve();
    // The ACKs of a post's members are written by the node that fanned it out: one ACK write per message cluster-wide.
    acks.route(link);
    messaging.setRouter(router);
    new Gauge({ name: 'magpie_cluster_nodes', help: 'Live nodes of the cluster this node sees (itself included; group routing)', registers: [metrics.registry], collect() { this.set(link.live().nodes.length); } });
    link.join(await clusterScope(db), config.groupRouting.heartbeatMs);
  }
  // Group messages reach push through the per-group notification levels (super groups by mentions, replies, @all).
  messaging.onCommitted(receipts.groupPush.onCommitted);
  accounts.onSessionsEnded((sessions) => push.service.unbindSessions(sessions));
  // Service accounts: broadcasts stored apart from chat, live frames to this node's connections, marketing pushes.
  const notifications = createNotificationsModule(api, {
    config,
    db,
    store,
    bus,
    accounts,
    connections,
    push: push.service,
    node,
    log: log.child({ mod: 'notifications' }),
    console: adminConsole ? { as: (req, role) => adminConsole.service.authenticate(bearer(req), role), audit: (admin, action, target, detail) => adminConsole.service.audit(admin, action, target, detail) } : null,
    audit: (action, target, detail) => auditSink?.(action, target, detail) ?? Promise.resolve(),
  });
  const offlineHandoff: OfflineHandoff = deps.offlineHandoff ?? push.service;
  push.service.tracer = tracing.tracer;
  const retry = createRetryQueue(config, metrics, offlineHandoff, log.child({ mod: 'retry' }), tracing.tracer);

  const gateway = new WsGateway({ config, log: log.child({ mod: 'gateway' }), metrics, bus, accounts, messaging, acks, ipLimiter, userLimits, retry, instructions, registry: connections, receipts, tracer: tracing.tracer });
  http.server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  // The stores have created their files (and WAL/SHM files) by now: make them private too.
  secureDataDir(config.dataDir, { create: false });

  return {
    config,
    store,
    bus,
    metrics,
    log,
    http,
    gateway,
    wallet,
    payments,
    social,
    push,
    routes,
    media,
    webhooks,
    console: adminConsole,
    receipts,
    node,
    async drain() {
      if (draining) return;
      draining = true;
      // Other nodes stop routing group posts here; the posts they forwarded are answered first.
      await (router ? router.leave(config.drain.timeoutMs) : bus.nodes?.leave());
      log.info({ node, delayMs: config.drain.delayMs }, 'draining: readiness is 503 now');
      if (config.drain.delayMs > 0) await new Promise((r) => setTimeout(r, config.drain.delayMs));
      await gateway.drain(config.drain);
      // Deliveries' ACKs received until now reach the database before the node goes away.
      await acks.flush();
    },
    lifecycle,
    search,
    tracing,
    retention,
    notifications,
    async start() {
      wallet.start();
      payments.start();
      media.start();
      webhooks.start();
      adminConsole?.start();
      retention.start();
      notifications.start();
      await push.start();
      await http.listen({ host: config.host, port: config.port });
      const metricsUrl = await metricsEndpoint.start();
      if (metricsUrl) log.info({ url: `${metricsUrl}/metrics` }, 'metrics on their own address');
      warmPasswordPolicy();
      const addr = http.server.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      return `${https ? 'https' : 'http'}://${host}:${addr.port}`;
    },
    async stop() {
      await (router ? router.leave(config.drain.timeoutMs) : bus.nodes?.leave());
      await retention.stop();
      await notifications.stop();
      await lifecycle.stop();
      await gateway.close();
      retry.stop();
      await receipts.stop();
      await acks.flush();
      await search.stop();
      await http.close();
      await metricsEndpoint.stop();
      await bus.close();
      await tracing.stop();
      await payments.stop();
      await wallet.stop();
      await social.stop();
      await push.stop();
      await media.stop();
      await webhooks.stop();
      adminConsole?.stop();
      await instructionStore.close();
      await store.close();
      await db.close();
    },
  };
}

