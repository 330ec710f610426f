import type { RestApi } from '../http/rest.ts';
import type { OpenResult } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/config.ts';
import { RedPacketService, type MembershipSource, type MessagePoster } from './redpacket-service.ts';
import { registerWalletRoutes } from './routes.ts';
import { openDatabase, type SqlEngine } from '../db/index.ts';
import { SqlWalletStore } from './sql-wallet-store.ts';
import { OperatorGateway, WalletService, type PaymentGateway } from './wallet-service.ts';
import type { WalletStore } from './wallet-store.ts';

export type { WalletStore } from './wallet-store.ts';
export { RedPacketService } from './redpacket-service.ts';
export { WalletService, OperatorGateway, type PaymentGateway } from './wallet-service.ts';

/**
 * The wallet store on the server's database `db` (db/index.ts openDatabase: SQLite file or the
 * process's one PostgreSQL pool). Without `db` (tools: the reconcile CLI, benchmarks) it opens
 * and migrates the database for `config` itself and closes it with the store.
 */
export async function openWalletStore(config: Config, db?: SqlEngine, opts: { schema?: string } = {}): Promise<WalletStore> {
  if (db) return new SqlWalletStore(db);
  const own = await openDatabase(config, opts);
  const store = new SqlWalletStore(own);
  return Object.assign(store, {
    close: async () => {
      await own.close();
    },
  });
}

export interface WalletModule {
  store: WalletStore;
  wallet: WalletService;
  redPackets: RedPacketService;
  /** Start the expiry sweeper. */
  start(): void;
  /** Stop the sweeper and close the wallet store (the database stays open: the server closes it last). */
  stop(): Promise<void>;
}

/** Build the wallet and red-packet services (routes registered on `api`). */
export async function createWalletModule(
  api: RestApi,
  deps: {
    config: Config;
    /** Membership reads: `getMember` (one statement at once) for the open path, see below. */
    store: MembershipSource & { isMemberNow?(conv: string, userId: string): Promise<boolean> };
    messaging: MessagePoster;
    log: Logger;
    registry?: Registry;
    /** The server's database (the wallet tables: migration 0006). */
    db: SqlEngine;
    walletStore?: WalletStore;
    gateway?: PaymentGateway;
    now?: () => number;
    /** Checks before a red-packet send (the payment PIN). */
    guardSend?: (userId: string, pin: string | undefined) => Promise<void>;
    /** After each open (live claim frames). */
    onOpened?: (packetId: string, userId: string, result: OpenResult) => void;
  },
): Promise<WalletModule> {
  const { config } = deps;
  const store = deps.walletStore ?? (await openWalletStore(config, deps.db));
  const rp = config.redPackets;
  // The membership check of an open reads at once (isMemberNow: one statement, no row built)
  // instead of joining the batched reads of the next event-loop turn (isMember): an open then
  // needs no turn of its own between its authentication and its commit.
  const source = deps.store;
  const isMemberNow = source.isMemberNow?.bind(source);
  const members: MembershipSource = isMemberNow
    ? { isMember: isMemberNow, getConversation: (conv) => source.getConversation(conv), getUser: (id) => source.getUser(id) }
    : source;
  const redPackets = new RedPacketService(
    store,
    members,
    deps.messaging,
    {
      expiryMs: rp.expiryMs,
      maxCount: rp.maxCount,
      maxTotal: rp.maxTotal,
      grabHoldMs: rp.grabHoldMs,
      grabWaitMs: rp.grabWaitMs,
      maxBalance: config.wallet.maxBalance,
      overAdmitRatio: rp.overAdmitRatio,
      overAdmitMin: rp.overAdmitMin,
      sweepIntervalMs: rp.sweepIntervalMs,
      postRetryAfterMs: rp.postRetryAfterMs,
      postGiveUpMs: rp.postGiveUpMs,
      commitDelayMs: config.commitDelayMs,
      maxBatch: config.maxBatch,
    },
    { log: deps.log, now: deps.now, registry: deps.registry },
  );
  const wallet = new WalletService(store, deps.gateway ?? new OperatorGateway(), deps.store, { log: deps.log, now: deps.now, limits: config.wallet });
  registerWalletRoutes(api, { redPackets, wallet, guardSend: deps.guardSend, onOpened: deps.onOpened });
  return {
    store,
    wallet,
    redPackets,
    start: () => redPackets.start(),
    async stop() {
      await redPackets.stop();
      await store.close();
    },
  };
}
