// Public API of @magpie/server: embed a Magpie node in a process of your own, or open its
// store and Bus from tools (benchmarks, operators' scripts). `npm start` runs ./main.ts.
export { createMagpieServer, openStore, openBus, type MagpieServer } from './app.ts';
export { openDatabase, type SqlEngine, type Queryable } from './db/index.ts';
export { openSqlite, type SqliteSynchronous } from './store/sqlite-connection.ts';
export { setSqliteWalCoalescing, walCoalesceStats, type WalCoalesceStats } from './store/sqlite-wal-coalesce.ts';
export { MemoryBus } from './bus/memory-bus.ts';
// Building blocks the benchmarks (bench/) measure on their own, over a database from openDatabase.
export { SqlSearchStore } from './search/search-store.ts';
export { SearchService } from './search/search-service.ts';
export { searchableText } from './search/extract.ts';
export { SqlReceiptStore } from './receipts/sql-receipt-store.ts';
export { ReceiptService } from './receipts/receipt-service.ts';
export { GroupPush } from './receipts/group-push.ts';
export { emptyBitmap, withBits } from './receipts/bitmap.ts';
export { PasswordHasher } from './util/passwords.ts';
export { SqlPaymentsStore } from './wallet/payments/sql-payments-store.ts';
export { SqlSocialStore } from './social/sql-social-store.ts';
export { SocialService } from './social/social-service.ts';
export { PinService } from './wallet/payments/pin-service.ts';
export { loadConfig, ConfigSchema, type Config } from './config/config.ts';
export { directConversationId, StoreConflictError, StoreNotFoundError } from './store/store.ts';
export type { Store, NewUser, UserRecord, NewSession, SessionRecord, AppendRequest, AppendOutcome, GroupRecord, MemberRecord, GroupRole } from './store/store.ts';
export type { Bus, BusEvent } from './bus/bus.ts';
export { hashToken } from './util/ids.ts';
export type { Principal } from './services/account-service.ts';
export { openPushStore, type PushStore } from './push/index.ts';
export { openWalletStore, RedPacketService, WalletService, type WalletStore } from './wallet/index.ts';
export type { MessagePoster } from './wallet/redpacket-service.ts';
export { MessagingService, type MessagingOptions } from './services/message-service.ts';
export { createMetrics, type Metrics } from './metrics.ts';
export { MessageTracer, type TracingOptions } from './tracing/tracer.ts';
// The Store over an engine from openDatabase (openStore opens its own), and the retention purge.
export { SqlStore, type SqlStoreOptions } from './store/sql-store.ts';
export { openSqliteStore, openPostgresStore } from './store/open.ts';
export { RetentionStore } from './retention/retention-store.ts';
export { PurgeJob, retentionMetrics, type PurgeReport } from './retention/purge-job.ts';
export { RetentionConfigSchema } from './config/retention-config.ts';
