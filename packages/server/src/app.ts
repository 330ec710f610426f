import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { MagpieError, docsRoutes, type RestRoute } from '@magpie/protocol';
import type { Config } from './config/config.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import type { Store } from './store/store.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { Bus } from './bus/bus.ts';
import { MemoryBus } from './bus/memory-bus.ts';
import { AccountService } from './services/account-service.ts';
import { MessagingService, type SendInput } from './services/message-service.ts';
import type { Principal } from './services/account-service.ts';
import { AckService } from './services/ack-service.ts';
import { WsGateway } from './gateway/ws-gateway.ts';
import { ConnectionRegistry } from './gateway/registry.ts';
import { registerApiRoutes } from './http/routes.ts';
import { RestApi, restRouteOf } from './http/rest.ts';
import { openApiDocument } from './http/openapi.ts';
import { registerGroupRoutes } from './http/group-routes.ts';
import { GroupService } from './services/group-service.ts';
import { InstructionService } from './instructions/instruction-service.ts';
import { openInstructionStore, registerInstructionRoutes } from './instructions/index.ts';
import type { InstructionStore } from './instructions/instruction-store.ts';
import { adminGuard } from './http/admin-auth.ts';
import { openDatabase } from './db/index.ts';
import { registerAdminUserRoutes } from './http/admin-user-routes.ts';
import { dropRelations, leaveAllGroups } from './services/account-cleanup.ts';
import { warmPasswordPolicy } from './util/password-policy.ts';
import { createWalletModule, type WalletModule, type WalletStore } from './wallet/index.ts';
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
import { createSearchModule, type SearchModule } from './search/index.ts';

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
  /** Profiles, friends, blocks, the stranger policy (src/social/). */
  social: SocialModule;
  /** Offline push (src/push/): device registry, providers, queue, funnel. */
  push: PushModule;
  /** Every HTTP route registered (method, URL pattern), for the docs test. */
  routes: { method: string; url: string }[];
  /** Uploads and media (src/media/): tus, blob storage, thumbnails, access, GC. */
  media: MediaModule;
  /** Message search and subject conversations (src/search/). */
  search: SearchModule;
  /** Listen; resolves with the bound URL. */
  start(): Promise<string>;
  stop(): Promise<void>;
}

export async function openStore(config: Config): Promise<Store> {
  if (config.store === 'sqlite') {
    return new SqliteStore({ path: join(config.dataDir, 'magpie.db'), ringCapacity: config.ringCapacity, synchronous: config.sqliteSynchronous, checkpointMs: config.sqliteCheckpointMs });
  }
  if (config.store.startsWith('postgres://') || config.store.startsWith('postgresql://')) {
    const { PostgresStore } = await import('./store/postgres-store.ts');
    const store = new PostgresStore({ url: config.store, ringCapacity: config.ringCapacity, max: config.pg.pools.messages, idleTimeoutS: config.pg.idleTimeoutS, unavailableWaitMs: config.pg.waitMs });
    await store.migrate();
    return store;
  }
  throw new Error(`unknown store: ${config.store} (use "sqlite" or a postgres:// URL)`);
}

/** The Bus: NATS when `nats` is set (a cluster of nodes), else in-process (one node). */
export async function openBus(config: Config, log?: Logger): Promise<Bus> {
  if (!config.nats) return new MemoryBus();
  const { NatsBus } = await import('./bus/nats-bus.ts');
  return NatsBus.connect({ servers: config.nats.split(',').map((s) => s.trim()), log: log?.child({ mod: 'bus' }) });
}

/** Wire one Magpie node: store → services → gateway and HTTP API. */
export async function createMagpieServer(config: Config, deps: { store?: Store; bus?: Bus; log?: Logger; offlineHandoff?: OfflineHandoff; instructionStore?: InstructionStore; wallet?: WalletStore; social?: SocialStore } = {}): Promise<MagpieServer> {
  const log = deps.log ?? pino({ level: config.logLevel });
  const metrics = createMetrics();
  // SQLite keeps everything in dataDir; with PostgreSQL only what an operator put there.
  secureDataDir(config.dataDir, { create: config.store === 'sqlite' });
  // The server's database, migrated to the current schema before any store uses it
  // (db/migrations; several nodes starting at once migrate under one lock).
  const db = await openDatabase(config, { log: (msg) => log.info(msg) });
  const store = deps.store ?? (await openStore(config));
  const bus = deps.bus ?? (await openBus(config, log));
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
    maxReplyBytes: config.limits.maxReplyBytes,
    storeWaitMs: config.pg.waitMs,
  });
  const acks = new AckService(store, bus, metrics);
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
  const restRoutes: RestRoute[] = [];
  http.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
    const rest = restRouteOf(r);
    if (rest) restRoutes.push(rest);
  });

  installApiErrors(http, { log, metrics, maxJsonDepth: config.limits.maxJsonDepth });
  await registerSecurityHeaders(http, { tls: https !== null });
  http.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/api/')) return;
    const wait = ipLimiter.take(req.ip);
    if (wait > 0) throw new MagpieError('rate_limited', 'too many requests from this address', { retryAfterMs: wait });
    // The per-user budget of WebSocket frames applies to REST requests as well (before the body is read).
    const token = req.url.startsWith('/api/admin/') ? undefined : bearer(req);
    if (!token) return;
    const principal = await accounts.authenticate(token).catch(() => null);
    if (principal) userLimits.request(principal.userId);
  });

  const metricsEndpoint = registerMetricsEndpoint(http, metrics, config.metrics);
  const api = new RestApi(http, accounts, config.adminToken);
  registerApiRoutes(api, accounts, messaging);
  const groups = new GroupService(store, bus, messaging, config.groups);
  registerGroupRoutes(api, groups);
  const instructionStore = deps.instructionStore ?? openInstructionStore(db);
  const instructions = new InstructionService(instructionStore, store, bus);
  registerInstructionRoutes(http, instructions, adminGuard(config.adminToken));
  registerAdminUserRoutes(http, accounts, adminGuard(config.adminToken));
  accounts.onAccountDeleted((userId) => leaveAllGroups(store, groups, userId, log));
  // Red-packet kinds are server-only: the wallet posts them on the server path, so clients cannot forge one.
  const walletPoster = { send: (p: Principal, input: SendInput) => messaging.postAsServer(p, input), check: (p: Principal, target: { to: string } | { conv: string }) => messaging.checkSend(p, target) };
  const wallet = await createWalletModule(http, { config, accounts, store, messaging: walletPoster, log: log.child({ mod: 'wallet' }), registry: metrics.registry, walletStore: deps.wallet });
  const social = await createSocialModule(http, { config, db, accounts, bus, messaging, socialStore: deps.social });
  const media = await createMediaModule(http, { config, db, accounts, store, messaging, log: log.child({ mod: 'media' }) });
  const search = createSearchModule(api, { db, store, messaging, log: log.child({ mod: 'search' }) });
  registerWebClient(http);
  let openApi: Record<string, unknown> | undefined;
  const docs = async () => (openApi ??= openApiDocument(restRoutes, routes, '1')) as { openapi: string; info: Record<string, unknown>; paths: Record<string, unknown> };
  api.route(docsRoutes.openapi, docs);
  api.route(docsRoutes.docs, docs);
  accounts.onAccountDeleted((userId) => dropRelations(social.service, userId, log));

  // Built in data-path order without a cycle: offline push reads presence from the connection
  // registry, the retry queue hands off to push, and the gateway uses both.
  const connections = new ConnectionRegistry();
  const push = await createPushModule(http, {
    server: config,
    config: config.push,
    store,
    accounts,
    presence: registryPresence(connections, bus),
    registry: metrics.registry,
    log: log.child({ mod: 'push' }),
  });
  messaging.onCommitted(push.service.onCommitted);
  accounts.onSessionsEnded((sessions) => push.service.unbindSessions(sessions));
  const offlineHandoff: OfflineHandoff = deps.offlineHandoff ?? push.service;
  const retry = createRetryQueue(config, metrics, offlineHandoff);

  const gateway = new WsGateway({ config, log: log.child({ mod: 'gateway' }), metrics, bus, accounts, messaging, acks, ipLimiter, userLimits, retry, instructions, registry: connections });
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
    social,
    push,
    routes,
    media,
    search,
    async start() {
      wallet.start();
      media.start();
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
      await gateway.close();
      await acks.flush();
      await search.stop();
      await http.close();
      await metricsEndpoint.stop();
      await bus.close();
      await wallet.stop();
      await social.stop();
      await push.stop();
      await media.stop();
      await instructionStore.close();
      await store.close();
      await db.close();
    },
  };
}

