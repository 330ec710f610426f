import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { PUSH_ENV, PushConfigSchema } from './push-config.ts';
import { MEDIA_ENV, MediaConfigSchema } from './media-config.ts';
import { WEBHOOKS_ENV, WebhooksConfigSchema } from './webhooks-config.ts';
import { PAYMENTS_ENV, PaymentsConfigSchema } from './payments-config.ts';
import { TRACING_ENV, TelemetryConfigSchema, TracingConfigSchema } from './tracing-config.ts';
import { RETENTION_ENV, RetentionConfigSchema } from './retention-config.ts';
import { SERVICES_ENV, ServicesConfigSchema } from './services-config.ts';

/**
 * Server configuration. Sources, later ones winning: defaults, the JSON file named by
 * MAGPIE_CONFIG (or ./magpie.config.json when present), then MAGPIE_* environment variables.
 */
export const ConfigSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().default('./data'),
  /** 'sqlite' (file under dataDir) or a postgres:// URL. */
  store: z.string().default('sqlite'),
  /** Cluster Bus: a nats:// URL (comma-separated for several servers). Unset: the in-process Bus (one node). */
  nats: z.string().optional(),
  /**
   * PostgreSQL connections: the shared engine's pool serves every store (messages, groups,
   * accounts, wallet, push, social graph, instructions, media); a node opens at most `shared`
   * connections (plus `messages` for old settings only: ignored); idle ones close after idleTimeoutS.
   * `hello` and `send` wait up to waitMs for an unavailable database, then answer `unavailable`.
   */
  pg: z
    .strictObject({
      pools: z
        .strictObject({
          /** Deprecated and ignored: the messaging store uses the shared pool since migration 0004-core. */
          messages: z.number().int().min(1).default(10),
          /** Ignored since issue 16 (the wallet uses the shared pool); accepted so older configurations still load. */
          wallet: z.number().int().min(1).default(10),
          /** Ignored since issue 16 (push uses the shared pool); accepted so older configurations still load. */
          push: z.number().int().min(1).default(5),
          /** The shared engine's pool (db/): every store — messages, groups, accounts, wallet, push, social graph, instructions, media. */
          shared: z.number().int().min(1).default(4),
        })
        .prefault({}),
      idleTimeoutS: z.number().int().min(0).default(30),
      waitMs: z.number().int().min(0).default(2000),
      /**
       * At start, before the node serves: open the pool's connections and run the store's
       * append and ACK-flush code on made-up rows in rollback-only transactions (store/pg-warmup.ts;
       * nothing is committed). A cold node's first messages otherwise pay the prepared statements
       * and V8's compilation under load.
       */
      warmUp: z.boolean().default(true),
    })
    .prefault({}),
  /** SQLite: 'full' fsyncs each group commit; 'normal' survives process crashes only. */
  sqliteSynchronous: z.enum(['full', 'normal']).default('full'),
  /** SQLite: checkpoint the WAL from a worker thread every this many ms (0 = only SQLite's checkpoints inside commits). */
  sqliteCheckpointMs: z.number().int().min(0).default(500),
  /**
   * SQLite: run the group commit of messages and the ACK flush on a writer thread with its own
   * connection (store/sqlite-writer.ts), so statements and fsyncs leave the event loop.
   */
  sqliteWriterThread: z.boolean().default(true),
  /**
   * SQLite: gather each commit's WAL writes into one write() (the VFS shim native/walbuf.c,
   * store/sqlite-wal-coalesce.ts). When its library is missing or fails to load, a warning is
   * logged and SQLite runs without it.
   */
  sqliteWalCoalesce: z.boolean().default(true),
  /**
   * SQLite writer thread: warm its append and ACK-flush code up at start on a private
   * in-memory database (store/writer-warmup.ts; ~0.6 s of CPU once, nothing written to the file).
   */
  sqliteWriterWarmUp: z.boolean().default(true),
  /**
   * The event loop's warm-up (loop-warmup.ts): right after start, a throwaway node in the same
   * process, on a private temporary SQLite database, serves a few thousand 1:1 messages from
   * loopback WebSocket clients, so the send/deliver/ACK code is compiled before the first real
   * load; nothing reaches the real database or metrics. Off by default: it did not measurably
   * lower the open loop's ACK p99 (docs/benchmarks.md, issue 23, branch elw).
   */
  loopWarmUp: z.boolean().default(false),
  /**
   * ACK flushes (services/ack-service.ts): a node's timed write of its devices' ACKs starts at
   * least this many ms after its previous one (0 = off: every write 20 ms after its first ACK).
   * A busy node then writes fewer, larger ACK transactions; delivered marks and counts reach
   * the senders up to this much later.
   */
  ackFlushMinIntervalMs: z.number().int().min(0).max(10_000).default(0),
  /**
   * SQLite: a committed message's search document is written by a deferred indexer at most
   * this many ms after its commit (search/search-indexer.ts), in a batch of its own; a search
   * first catches the index up, so it never misses a committed message.
   */
  searchIndexDelayMs: z.number().int().min(0).max(60_000).default(100),
  tls: z.strictObject({ keyFile: z.string(), certFile: z.string() }).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Inbox ring capacity K (pointers kept per user). */
  ringCapacity: z.number().int().min(16).default(5000),
  /** Largest inbox gap served incrementally; above it the client is told to full-sync. */
  syncGapThreshold: z.number().int().min(1).default(2000),
  syncPageSize: z.number().int().min(1).max(1000).default(200),
  /** Session lifetime; when it ends, the session's open sockets are closed (4100). */
  tokenTtlMs: z.number().int().min(1000).default(30 * 24 * 3600 * 1000),
  /** Multi-device policy: at most this many live sessions per platform class (mobile, desktop, web); the oldest is kicked. 1 = a new login kicks the older one. */
  devicesPerPlatformClass: z.number().int().min(1).max(100).default(3),
  /** Passwords and login (see docs/operations.md, "Passwords and login"). */
  auth: z
    .strictObject({
      /** Minimum zxcvbn-ts score (0–4) of a new password at register and password change; 0 turns the check off. */
      minPasswordScore: z.number().int().min(0).max(4).default(2),
      /** scrypt hashes computed at once: each holds a libuv pool thread (4, shared with file reads) for ~50 ms. */
      hashConcurrency: z.number().int().min(1).max(64).default(2),
      /** Password checks waiting for a slot; beyond it `unavailable` with retryAfterMs. */
      hashQueue: z.number().int().min(0).default(64),
      /** Failed password checks per account (per known device) before the backoff starts. */
      loginFreeFailures: z.number().int().min(0).default(3),
      /** First backoff delay; it doubles per further failure up to loginBackoffMaxMs. */
      loginBackoffBaseMs: z.number().int().min(0).default(1000),
      /** Longest delay: the most an attacker can hold the owner's login back. */
      loginBackoffMaxMs: z.number().int().min(0).default(30_000),
      /** Failures are forgotten after this long without another. */
      loginForgetAfterMs: z.number().int().min(1000).default(15 * 60_000),
      /** Per IP: failed password checks per minute (sustained) and burst; then every login from the IP waits. */
      ipLoginFailuresPerMinute: z.number().min(1).default(30),
      ipLoginFailureBurst: z.number().int().min(1).default(30),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxFrameBytes: z.number().int().min(1024).default(64 * 1024),
      maxMessageBytes: z.number().int().min(64).default(16 * 1024),
      /** Per user: sustained frames per second and burst. */
      userRate: z.number().min(1).default(50),
      userBurst: z.number().int().min(1).default(200),
      /** Per IP: HTTP requests and new connections per second and burst. */
      ipRate: z.number().min(1).default(100),
      ipBurst: z.number().int().min(1).default(400),
      /** Per user: `ping` frames per second and burst (a limit of their own: pings are cheap and frequent, not free). */
      pingRate: z.number().min(0.1).default(5),
      pingBurst: z.number().int().min(1).default(20),
      /** Cap of one connection's output (queued replies and events plus the socket's unsent bytes); above it the client is cut off (close 4501). */
      maxBufferedBytes: z.number().int().min(64 * 1024).default(4 * 1024 * 1024),
      /** Output waiting this long without any byte reaching the client makes it a slow consumer (close 4501); also its time to read the close frame. */
      slowConsumerMs: z.number().int().min(500).default(10_000),
      /** Requests of one connection other than `send` being answered at once; further frames wait and the socket is not read meanwhile. */
      maxInflightPerConnection: z.number().int().min(1).max(1000).default(8),
      /**
       * `send` frames of one connection being answered at once: a window of their own, next to
       * maxInflightPerConnection (a send's reply is a small ACK, and sends are bounded per node
       * by maxSendsInFlight). Further frames wait, in arrival order, and the socket is not read.
       */
      maxSendsInFlightPerConnection: z.number().int().min(1).max(256).default(32),
      /**
       * `send` frames handled at once by this node over all connections (from their start to
       * their reply); further sends wait unstarted and their sockets are not read meanwhile.
       * Bounds the memory of a node that falls behind (issue 23); 0 = no bound.
       */
      maxSendsInFlight: z.number().int().min(0).default(2048),
      /** Target size of one reply page (history, sync, conversation list): a page stops growing past it (it holds at least one item) and says `more`. */
      maxReplyBytes: z.number().int().min(16 * 1024).default(256 * 1024),
      /** Deepest nesting of arrays/objects accepted in a frame or request body (`nesting_too_deep`). */
      maxJsonDepth: z.number().int().min(4).max(256).default(32),
      helloTimeoutMs: z.number().int().min(100).default(10_000),
      /** Open TCP connections per client IP, counted at accept (before any byte); 0 = no cap. Behind a proxy every client has the proxy's IP. */
      maxConnectionsPerIp: z.number().int().min(0).default(1000),
      /** Open TCP connections of the process; above it new ones are dropped at accept. 0 = the open-file limit minus 512. */
      maxConnections: z.number().int().min(0).default(0),
      /** Authenticated WebSocket connections per user on one node; the next `hello` is refused (close 4505). */
      maxSocketsPerUser: z.number().int().min(1).default(32),
      /** HTTP: time to receive a request's complete headers. */
      headersTimeoutMs: z.number().int().min(100).default(15_000),
      /** HTTP: time to receive a whole request, headers and body. */
      requestTimeoutMs: z.number().int().min(100).default(30_000),
      /** HTTP: how long an idle keep-alive connection stays open after a response. */
      keepAliveTimeoutMs: z.number().int().min(100).default(10_000),
      /** HTTP: a connection with no traffic for this long is closed (until it becomes a WebSocket; those have heartbeats). */
      idleTimeoutMs: z.number().int().min(100).default(30_000),
      /** Invalid frames tolerated per connection within 10 s before it is closed (4504). */
      maxErrorsPer10s: z.number().int().min(1).default(100),
    })
    .prefault({}),
  /** Heartbeat interval the server expects by default; it closes a connection silent for 2 intervals. */
  heartbeatMs: z.number().int().min(1000).default(40_000),
  /** Downlink retry (see delivery/retry-policy.ts). */
  retry: z
    .strictObject({
      strategy: z.enum(['adaptive', 'fixed']).default('adaptive'),
      probeDelayMs: z.number().int().min(50).default(2000),
      probeCount: z.number().int().min(0).max(20).default(4),
      steppedStartMs: z.number().int().min(50).default(5000),
      stepMs: z.number().int().min(0).default(5000),
      maxDelayMs: z.number().int().min(50).default(60_000),
      maxAttempts: z.number().int().min(1).max(100).default(12),
      fixedDelayMs: z.number().int().min(50).default(10_000),
      perDeviceCap: z.number().int().min(1).default(512),
      totalCap: z.number().int().min(1).default(1_000_000),
      /** Hold due retries while the event loop lags more than this (ms; 0 = never hold). */
      holdLagMs: z.number().int().min(0).default(100),
    })
    .prefault({}),
  groups: z
    .strictObject({
      /** Largest group allowed. */
      maxMembers: z.number().int().min(2).default(200_000),
      /** Above this many members a group becomes a super group (read diffusion). */
      superThreshold: z.number().int().min(2).default(500),
    })
    .prefault({}),
  /**
   * Cluster (MAGPIE_NATS): a normal group's posts are appended by one owner node, chosen by
   * rendezvous hashing over the live nodes; the sender's node forwards them (docs/architecture.md,
   * "Routing a normal group's posts"). No effect on one node.
   */
  groupRouting: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** A forward unanswered for this long is appended on the sender's node under the same (sender, clientMsgId). */
      forwardTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
      /** Node heartbeat interval; a node unheard for 3 intervals is gone (its groups move to other nodes). */
      heartbeatMs: z.number().int().min(100).max(60_000).default(1000),
    })
    .prefault({}),
  /** Group commit: wait at most this long to collect sends into one transaction (0 = one event-loop turn). */
  commitDelayMs: z.number().int().min(0).max(50).default(0),
  /** Group commit: most messages one transaction takes; the rest wait for the next. */
  maxBatch: z.number().int().min(1).max(10_000).default(2000),
  /** GET /metrics: unrestricted on the API port unless a scrape token and/or a separate listen address is set (docs/operations.md). */
  metrics: z
    .strictObject({
      /** Scrapers must send `Authorization: Bearer <token>`. */
      token: z.string().min(16).optional(),
      /** Serve /metrics only on this port (0 = any free port), not on the API port. */
      port: z.number().int().min(0).max(65535).optional(),
      /** Bind address of the separate metrics port. */
      host: z.string().default('127.0.0.1'),
    })
    .prefault({}),
  /** This node's name in readiness answers, logs and traces (default: the host name and process id). */
  nodeId: z.string().min(1).max(64).optional(),
  /** Graceful drain on SIGTERM (docs/operations.md "Draining a node"). */
  drain: z
    .strictObject({
      /** After readiness turns 503, wait this long before closing connections (load balancers stop sending new ones). */
      delayMs: z.number().int().min(0).max(120_000).default(0),
      /** Longest wait for a connection's running requests (a send's commit) before it is closed anyway. */
      timeoutMs: z.number().int().min(0).max(120_000).default(5000),
      /** Clients are told to reconnect after a delay drawn uniformly from [reconnectMinMs, reconnectMaxMs]. */
      reconnectMinMs: z.number().int().min(0).max(600_000).default(0),
      reconnectMaxMs: z.number().int().min(0).max(600_000).default(5000),
    })
    .prefault({})
    .refine((d) => d.reconnectMinMs <= d.reconnectMaxMs, { message: 'drain.reconnectMinMs must not exceed drain.reconnectMaxMs' }),
  /** Bearer token of the operator API (/api/admin/…: top-up, withdrawal, reconciliation). Unset: the admin API is disabled. */
  adminToken: z.string().min(16).optional(),
  /** Direct messages between users who are not friends: 'allow', or 'friends_only'. Blocks apply either way (see src/social/). */
  strangerMessages: z.enum(['allow', 'friends_only']).default('allow'),
  /** Message lifecycle: recall, edit, reactions (see src/lifecycle/). */
  lifecycle: z
    .strictObject({
      /** A sender may recall a message this long after sending (ms); group owners and admins any time. */
      recallWindowMs: z.number().int().min(0).default(120_000),
      /** A sender may edit a text message this long after sending (ms). */
      editWindowMs: z.number().int().min(0).default(24 * 3600 * 1000),
      /** Keep previous versions of edited messages for the participants (GET …/edits). */
      keepEditHistory: z.boolean().default(true),
      /** Super groups: reaction changes within this window are coalesced into one event (ms; 0 = one event per change). */
      reactionCoalesceMs: z.number().int().min(0).max(60_000).default(500),
      /** Different emojis one message may carry. */
      maxEmojisPerMessage: z.number().int().min(1).max(200).default(20),
    })
    .prefault({}),
  /** Social graph limits (see src/social/). */
  social: z
    .strictObject({
      /** Largest serialized `extra` JSON of a profile, in bytes. */
      maxProfileExtraBytes: z.number().int().min(2).max(65_536).default(4096),
      /** Relation changes kept per user; a client further behind reloads its lists. */
      changeLogCapacity: z.number().int().min(8).default(1000),
    })
    .prefault({}),
  /** Read receipts, typing, presence, group notification levels (see src/receipts/). */
  receipts: z
    .strictObject({
      /** System level: group messages ask for read receipts unless the group or the message says otherwise. */
      groups: z.boolean().default(true),
      /** Groups above this member count track no receipts. */
      maxGroupMembers: z.number().int().min(2).max(100_000).default(10_000),
      /** Read reports and notices are batched for this long (ms). */
      flushMs: z.number().int().min(1).max(10_000).default(50),
      /** Typing: indicator lifetime on the client, minimum interval per user and conversation, largest group. */
      typingTtlMs: z.number().int().min(500).max(60_000).default(6000),
      typingMinIntervalMs: z.number().int().min(0).max(60_000).default(2000),
      typingMaxMembers: z.number().int().min(2).max(10_000).default(100),
      /** Presence changes wait this long before they are published (a flapping link publishes nothing). */
      presenceDebounceMs: z.number().int().min(0).max(60_000).default(2000),
      /** Presence privacy of users who chose none. */
      presenceDefault: z.enum(['everyone', 'friends', 'nobody']).default('friends'),
      /** Default per-group notification levels (offline push). */
      notifyGroup: z.enum(['all', 'mentions', 'none']).default('all'),
      notifySuper: z.enum(['all', 'mentions', 'none']).default('mentions'),
    })
    .prefault({}),
  /** Red packets (see src/wallet/). Amounts in fen. */
  redPackets: z
    .strictObject({
      /** Unclaimed money returns to the sender this long after sending. */
      expiryMs: z.number().int().min(1000).default(24 * 3600 * 1000),
      maxCount: z.number().int().min(1).max(1_000_000).default(200),
      maxTotal: z.number().int().min(1).max(2 ** 50).default(2_000_000),
      /** An admitted grab holds its place this long; an unopened hold then goes to the next grabber. */
      grabHoldMs: z.number().int().min(50).default(10_000),
      /** A grab or open that finds every share held waits up to this long for the holders to settle before answering `busy` (0: answer at once). */
      grabWaitMs: z.number().int().min(0).max(30_000).default(2000),
      /** Grabs admitted above the shares left: max(overAdmitMin, ceil(left × overAdmitRatio)). The open is authoritative. */
      overAdmitRatio: z.number().min(0).max(10).default(0.1),
      overAdmitMin: z.number().int().min(0).default(2),
      /** Expiry/refund and status-message sweeper period. */
      sweepIntervalMs: z.number().int().min(50).default(5000),
      postRetryAfterMs: z.number().int().min(0).default(30_000),
      postGiveUpMs: z.number().int().min(1000).default(10 * 60_000),
    })
    .prefault({}),
  /** Wallet limits (see src/wallet/). Amounts in fen. */
  wallet: z
    .strictObject({
      /** Largest single top-up or withdrawal. */
      maxAmount: z.number().int().min(1).max(2 ** 50).default(100_000_000),
      /** Largest balance a top-up or a red-packet claim may reach (refunds and reversals always go through). */
      maxBalance: z.number().int().min(1).max(2 ** 50).default(10_000_000_000),
    })
    .prefault({}),
  /** Offline push: providers, policy, quotas, lanes (see config/push-config.ts and docs/operations.md). */
  push: PushConfigSchema.prefault({}),
  /** Uploads, media storage (local disk or S3), thumbnails, access, GC (see config/media-config.ts and docs/operations.md). */
  media: MediaConfigSchema.prefault({}),
  /** Webhooks, the keyword filter and the after-event outbox (src/webhooks/, docs/operations.md). */
  webhooks: WebhooksConfigSchema.prefault({}),
  /** The admin console at /admin (src/console/, docs/operations.md). */
  console: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Lifetime of a console session. */
      sessionTtlMs: z.number().int().min(60_000).default(12 * 3600 * 1000),
      /** How often the operations charts sample this node's metrics, and how many samples they keep. */
      sampleMs: z.number().int().min(100).default(10_000),
      samplePoints: z.number().int().min(10).max(100_000).default(360),
    })
    .prefault({}),
  /** Payment PIN and the payment provider (see config/payments-config.ts and docs/operations.md). */
  payments: PaymentsConfigSchema.prefault({}),
  /** Message tracing: the per-node journal and optional OTLP span export (config/tracing-config.ts, docs/operations.md). */
  tracing: TracingConfigSchema.prefault({}),
  /** Client connect telemetry reports (POST /api/telemetry/connect). */
  telemetry: TelemetryConfigSchema.prefault({}),
  /** Message retention per conversation kind and the purge job (see config/retention-config.ts and docs/operations.md). */
  retention: RetentionConfigSchema.prefault({}),
  /** Service accounts and notification conversations: ring capacity, retention, schedules (config/services-config.ts, docs/operations.md). */
  services: ServicesConfigSchema.prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;

function pgPool(c: Record<string, unknown>, pool: string, v: string): void {
  const pg = (c.pg ?? {}) as { pools?: object };
  c.pg = { ...pg, pools: { ...pg.pools, [pool]: Number(v) } };
}

const ENV: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  MAGPIE_HOST: (c, v) => (c.host = v),
  MAGPIE_PORT: (c, v) => (c.port = Number(v)),
  MAGPIE_DATA_DIR: (c, v) => (c.dataDir = v),
  MAGPIE_STORE: (c, v) => (c.store = v),
  MAGPIE_NATS: (c, v) => (c.nats = v),
  MAGPIE_GROUP_ROUTING: (c, v) => (c.groupRouting = { ...(c.groupRouting as object), enabled: v === 'true' || v === '1' || v === 'on' }),
  MAGPIE_GROUP_FORWARD_TIMEOUT_MS: (c, v) => (c.groupRouting = { ...(c.groupRouting as object), forwardTimeoutMs: Number(v) }),
  MAGPIE_NODE_HEARTBEAT_MS: (c, v) => (c.groupRouting = { ...(c.groupRouting as object), heartbeatMs: Number(v) }),
  MAGPIE_PG_POOL_MESSAGES: (c, v) => pgPool(c, 'messages', v),
  MAGPIE_PG_POOL_WALLET: (c, v) => pgPool(c, 'wallet', v),
  MAGPIE_PG_POOL_PUSH: (c, v) => pgPool(c, 'push', v),
  MAGPIE_PG_POOL_SHARED: (c, v) => pgPool(c, 'shared', v),
  MAGPIE_PG_IDLE_TIMEOUT_S: (c, v) => (c.pg = { ...(c.pg as object), idleTimeoutS: Number(v) }),
  MAGPIE_PG_WAIT_MS: (c, v) => (c.pg = { ...(c.pg as object), waitMs: Number(v) }),
  MAGPIE_PG_WARMUP: (c, v) => (c.pg = { ...(c.pg as object), warmUp: v === 'true' || v === '1' }),
  MAGPIE_SQLITE_SYNCHRONOUS: (c, v) => (c.sqliteSynchronous = v),
  MAGPIE_SQLITE_CHECKPOINT_MS: (c, v) => (c.sqliteCheckpointMs = Number(v)),
  MAGPIE_SQLITE_WRITER_THREAD: (c, v) => (c.sqliteWriterThread = v === 'true' || v === '1'),
  MAGPIE_SQLITE_WAL_COALESCE: (c, v) => (c.sqliteWalCoalesce = v === 'true' || v === '1'),
  MAGPIE_WRITER_WARMUP: (c, v) => (c.sqliteWriterWarmUp = v === 'true' || v === '1'),
  MAGPIE_LOOP_WARMUP: (c, v) => (c.loopWarmUp = v === 'true' || v === '1'),
  MAGPIE_ACK_FLUSH_MIN_INTERVAL_MS: (c, v) => (c.ackFlushMinIntervalMs = Number(v)),
  MAGPIE_SEARCH_INDEX_DELAY_MS: (c, v) => (c.searchIndexDelayMs = Number(v)),
  MAGPIE_LOG_LEVEL: (c, v) => (c.logLevel = v),
  MAGPIE_RING_CAPACITY: (c, v) => (c.ringCapacity = Number(v)),
  MAGPIE_SYNC_GAP_THRESHOLD: (c, v) => (c.syncGapThreshold = Number(v)),
  MAGPIE_COMMIT_DELAY_MS: (c, v) => (c.commitDelayMs = Number(v)),
  MAGPIE_MAX_BATCH: (c, v) => (c.maxBatch = Number(v)),
  MAGPIE_TOKEN_TTL_MS: (c, v) => (c.tokenTtlMs = Number(v)),
  MAGPIE_DEVICES_PER_PLATFORM_CLASS: (c, v) => (c.devicesPerPlatformClass = Number(v)),
  MAGPIE_HEARTBEAT_MS: (c, v) => (c.heartbeatMs = Number(v)),
  MAGPIE_TLS_KEY: (c, v) => (c.tls = { ...(c.tls as object), keyFile: v }),
  MAGPIE_TLS_CERT: (c, v) => (c.tls = { ...(c.tls as object), certFile: v }),
  MAGPIE_USER_RATE: (c, v) => (c.limits = { ...(c.limits as object), userRate: Number(v) }),
  MAGPIE_USER_BURST: (c, v) => (c.limits = { ...(c.limits as object), userBurst: Number(v) }),
  MAGPIE_IP_RATE: (c, v) => (c.limits = { ...(c.limits as object), ipRate: Number(v) }),
  MAGPIE_IP_BURST: (c, v) => (c.limits = { ...(c.limits as object), ipBurst: Number(v) }),
  MAGPIE_MAX_FRAME_BYTES: (c, v) => (c.limits = { ...(c.limits as object), maxFrameBytes: Number(v) }),
  MAGPIE_PING_RATE: (c, v) => (c.limits = { ...(c.limits as object), pingRate: Number(v) }),
  MAGPIE_PING_BURST: (c, v) => (c.limits = { ...(c.limits as object), pingBurst: Number(v) }),
  MAGPIE_MAX_BUFFERED_BYTES: (c, v) => (c.limits = { ...(c.limits as object), maxBufferedBytes: Number(v) }),
  MAGPIE_SLOW_CONSUMER_MS: (c, v) => (c.limits = { ...(c.limits as object), slowConsumerMs: Number(v) }),
  MAGPIE_MAX_INFLIGHT: (c, v) => (c.limits = { ...(c.limits as object), maxInflightPerConnection: Number(v) }),
  MAGPIE_MAX_SENDS_IN_FLIGHT_PER_CONNECTION: (c, v) => (c.limits = { ...(c.limits as object), maxSendsInFlightPerConnection: Number(v) }),
  MAGPIE_MAX_SENDS_IN_FLIGHT: (c, v) => (c.limits = { ...(c.limits as object), maxSendsInFlight: Number(v) }),
  MAGPIE_MAX_REPLY_BYTES: (c, v) => (c.limits = { ...(c.limits as object), maxReplyBytes: Number(v) }),
  MAGPIE_MAX_JSON_DEPTH: (c, v) => (c.limits = { ...(c.limits as object), maxJsonDepth: Number(v) }),
  MAGPIE_MAX_ERRORS_PER_10S: (c, v) => (c.limits = { ...(c.limits as object), maxErrorsPer10s: Number(v) }),
  MAGPIE_HELLO_TIMEOUT_MS: (c, v) => (c.limits = { ...(c.limits as object), helloTimeoutMs: Number(v) }),
  MAGPIE_MAX_CONNECTIONS_PER_IP: (c, v) => (c.limits = { ...(c.limits as object), maxConnectionsPerIp: Number(v) }),
  MAGPIE_MAX_CONNECTIONS: (c, v) => (c.limits = { ...(c.limits as object), maxConnections: Number(v) }),
  MAGPIE_MAX_SOCKETS_PER_USER: (c, v) => (c.limits = { ...(c.limits as object), maxSocketsPerUser: Number(v) }),
  MAGPIE_HEADERS_TIMEOUT_MS: (c, v) => (c.limits = { ...(c.limits as object), headersTimeoutMs: Number(v) }),
  MAGPIE_REQUEST_TIMEOUT_MS: (c, v) => (c.limits = { ...(c.limits as object), requestTimeoutMs: Number(v) }),
  MAGPIE_KEEP_ALIVE_TIMEOUT_MS: (c, v) => (c.limits = { ...(c.limits as object), keepAliveTimeoutMs: Number(v) }),
  MAGPIE_IDLE_TIMEOUT_MS: (c, v) => (c.limits = { ...(c.limits as object), idleTimeoutMs: Number(v) }),
  MAGPIE_RETRY_STRATEGY: (c, v) => (c.retry = { ...(c.retry as object), strategy: v }),
  MAGPIE_RETRY_PROBE_MS: (c, v) => (c.retry = { ...(c.retry as object), probeDelayMs: Number(v) }),
  MAGPIE_RETRY_STEPPED_START_MS: (c, v) => (c.retry = { ...(c.retry as object), steppedStartMs: Number(v) }),
  MAGPIE_RETRY_STEP_MS: (c, v) => (c.retry = { ...(c.retry as object), stepMs: Number(v) }),
  MAGPIE_RETRY_MAX_MS: (c, v) => (c.retry = { ...(c.retry as object), maxDelayMs: Number(v) }),
  MAGPIE_RETRY_MAX_ATTEMPTS: (c, v) => (c.retry = { ...(c.retry as object), maxAttempts: Number(v) }),
  MAGPIE_RETRY_FIXED_MS: (c, v) => (c.retry = { ...(c.retry as object), fixedDelayMs: Number(v) }),
  MAGPIE_RETRY_HOLD_LAG_MS: (c, v) => (c.retry = { ...(c.retry as object), holdLagMs: Number(v) }),
  MAGPIE_GROUP_MAX_MEMBERS: (c, v) => (c.groups = { ...(c.groups as object), maxMembers: Number(v) }),
  MAGPIE_SUPER_GROUP_THRESHOLD: (c, v) => (c.groups = { ...(c.groups as object), superThreshold: Number(v) }),
  MAGPIE_MAX_MESSAGE_BYTES: (c, v) => (c.limits = { ...(c.limits as object), maxMessageBytes: Number(v) }),
  MAGPIE_METRICS_TOKEN: (c, v) => (c.metrics = { ...(c.metrics as object), token: v }),
  MAGPIE_METRICS_PORT: (c, v) => (c.metrics = { ...(c.metrics as object), port: Number(v) }),
  MAGPIE_METRICS_HOST: (c, v) => (c.metrics = { ...(c.metrics as object), host: v }),
  MAGPIE_ADMIN_TOKEN: (c, v) => (c.adminToken = v),
  MAGPIE_NODE_ID: (c, v) => (c.nodeId = v),
  MAGPIE_DRAIN_DELAY_MS: (c, v) => (c.drain = { ...(c.drain as object), delayMs: Number(v) }),
  MAGPIE_DRAIN_TIMEOUT_MS: (c, v) => (c.drain = { ...(c.drain as object), timeoutMs: Number(v) }),
  MAGPIE_DRAIN_RECONNECT_MIN_MS: (c, v) => (c.drain = { ...(c.drain as object), reconnectMinMs: Number(v) }),
  MAGPIE_DRAIN_RECONNECT_MAX_MS: (c, v) => (c.drain = { ...(c.drain as object), reconnectMaxMs: Number(v) }),
  MAGPIE_MIN_PASSWORD_SCORE: (c, v) => (c.auth = { ...(c.auth as object), minPasswordScore: Number(v) }),
  MAGPIE_HASH_CONCURRENCY: (c, v) => (c.auth = { ...(c.auth as object), hashConcurrency: Number(v) }),
  MAGPIE_HASH_QUEUE: (c, v) => (c.auth = { ...(c.auth as object), hashQueue: Number(v) }),
  MAGPIE_LOGIN_FREE_FAILURES: (c, v) => (c.auth = { ...(c.auth as object), loginFreeFailures: Number(v) }),
  MAGPIE_LOGIN_BACKOFF_BASE_MS: (c, v) => (c.auth = { ...(c.auth as object), loginBackoffBaseMs: Number(v) }),
  MAGPIE_LOGIN_BACKOFF_MAX_MS: (c, v) => (c.auth = { ...(c.auth as object), loginBackoffMaxMs: Number(v) }),
  MAGPIE_IP_LOGIN_FAILURES_PER_MIN: (c, v) => (c.auth = { ...(c.auth as object), ipLoginFailuresPerMinute: Number(v) }),
  MAGPIE_IP_LOGIN_FAILURE_BURST: (c, v) => (c.auth = { ...(c.auth as object), ipLoginFailureBurst: Number(v) }),
  MAGPIE_STRANGER_MESSAGES: (c, v) => (c.strangerMessages = v),
  MAGPIE_RECALL_WINDOW_MS: (c, v) => (c.lifecycle = { ...(c.lifecycle as object), recallWindowMs: Number(v) }),
  MAGPIE_EDIT_WINDOW_MS: (c, v) => (c.lifecycle = { ...(c.lifecycle as object), editWindowMs: Number(v) }),
  MAGPIE_KEEP_EDIT_HISTORY: (c, v) => (c.lifecycle = { ...(c.lifecycle as object), keepEditHistory: v === 'true' || v === '1' }),
  MAGPIE_REACTION_COALESCE_MS: (c, v) => (c.lifecycle = { ...(c.lifecycle as object), reactionCoalesceMs: Number(v) }),
  MAGPIE_MAX_EMOJIS_PER_MESSAGE: (c, v) => (c.lifecycle = { ...(c.lifecycle as object), maxEmojisPerMessage: Number(v) }),
  MAGPIE_RELATION_LOG_CAPACITY: (c, v) => (c.social = { ...(c.social as object), changeLogCapacity: Number(v) }),
  MAGPIE_RECEIPTS_GROUPS: (c, v) => (c.receipts = { ...(c.receipts as object), groups: v === 'true' || v === '1' }),
  MAGPIE_RECEIPTS_MAX_GROUP_MEMBERS: (c, v) => (c.receipts = { ...(c.receipts as object), maxGroupMembers: Number(v) }),
  MAGPIE_RECEIPTS_FLUSH_MS: (c, v) => (c.receipts = { ...(c.receipts as object), flushMs: Number(v) }),
  MAGPIE_TYPING_MIN_INTERVAL_MS: (c, v) => (c.receipts = { ...(c.receipts as object), typingMinIntervalMs: Number(v) }),
  MAGPIE_PRESENCE_DEBOUNCE_MS: (c, v) => (c.receipts = { ...(c.receipts as object), presenceDebounceMs: Number(v) }),
  MAGPIE_PRESENCE_DEFAULT: (c, v) => (c.receipts = { ...(c.receipts as object), presenceDefault: v }),
  MAGPIE_NOTIFY_SUPER_DEFAULT: (c, v) => (c.receipts = { ...(c.receipts as object), notifySuper: v }),
  MAGPIE_REDPACKET_EXPIRY_MS: (c, v) => (c.redPackets = { ...(c.redPackets as object), expiryMs: Number(v) }),
  MAGPIE_REDPACKET_MAX_COUNT: (c, v) => (c.redPackets = { ...(c.redPackets as object), maxCount: Number(v) }),
  MAGPIE_REDPACKET_GRAB_HOLD_MS: (c, v) => (c.redPackets = { ...(c.redPackets as object), grabHoldMs: Number(v) }),
  MAGPIE_REDPACKET_MAX_TOTAL: (c, v) => (c.redPackets = { ...(c.redPackets as object), maxTotal: Number(v) }),
  MAGPIE_REDPACKET_GRAB_WAIT_MS: (c, v) => (c.redPackets = { ...(c.redPackets as object), grabWaitMs: Number(v) }),
  MAGPIE_WALLET_MAX_AMOUNT: (c, v) => (c.wallet = { ...(c.wallet as object), maxAmount: Number(v) }),
  MAGPIE_WALLET_MAX_BALANCE: (c, v) => (c.wallet = { ...(c.wallet as object), maxBalance: Number(v) }),
  ...PUSH_ENV,
  ...MEDIA_ENV,
  ...WEBHOOKS_ENV,
  MAGPIE_CONSOLE: (c, v) => (c.console = { ...(c.console as object), enabled: v !== 'off' && v !== 'false' && v !== '0' }),
  MAGPIE_CONSOLE_SAMPLE_MS: (c, v) => (c.console = { ...(c.console as object), sampleMs: Number(v) }),
  ...PAYMENTS_ENV,
  ...TRACING_ENV,
  ...RETENTION_ENV,
  ...SERVICES_ENV,
};

/** Every environment variable the configuration reads (deploy files are checked against it). */
export const CONFIG_ENV_NAMES: readonly string[] = Object.keys(ENV);

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  let raw: Record<string, unknown> = {};
  const file = env.MAGPIE_CONFIG ?? (existsSync('magpie.config.json') ? 'magpie.config.json' : undefined);
  if (file) raw = JSON.parse(readFileSync(resolve(file), 'utf8')) as Record<string, unknown>;
  for (const [name, apply] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') apply(raw, v);
  }
  Object.assign(raw, overrides);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${lines}`);
  }
  return parsed.data;
}
