import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { OpenResult } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/config.ts';
import type { AccountService } from '../services/account-service.ts';
import { RedPacketService, type MembershipSource, type MessagePoster } from './redpacket-service.ts';
import { registerWalletRoutes } from './routes.ts';
import { SqliteWalletStore } from './sqlite-wallet-store.ts';
import { OperatorGateway, WalletService, type PaymentGateway } from './wallet-service.ts';
import type { WalletStore } from './wallet-store.ts';

export type { WalletStore } from './wallet-store.ts';
export { RedPacketService } from './redpacket-service.ts';
export { WalletService, OperatorGateway, type PaymentGateway } from './wallet-service.ts';

/** The wallet store for this configuration: the server's SQLite file, or the PostgreSQL URL. */
export async function openWalletStore(config: Config): Promise<WalletStore> {
  if (config.store === 'sqlite') {
    return new SqliteWalletStore({ path: join(config.dataDir, 'magpie.db'), synchronous: config.sqliteSynchronous });
  }
  if (config.store.startsWith('postgres://') || config.store.startsWith('postgresql://')) {
    const { PostgresWalletStore } = await import('./postgres-wallet-store.ts');
    const store = new PostgresWalletStore({ url: config.store, max: config.pg.pools.wallet, idleTimeoutS: config.pg.idleTimeoutS });
    await store.migrate();
    return store;
  }
  throw new Error(`unknown store: ${config.store}`);
}

export interface WalletModule {
  store: WalletStore;
  wallet: WalletService;
  redPackets: RedPacketService;
  /** Start the expiry sweeper. */
  start(): void;
  /** Stop the sweeper and close the wallet store. */
  stop(): Promise<void>;
}

/** Build the wallet and red-packet services on `http` (routes registered). */
export async function createWalletModule(
  http: FastifyInstance,
  deps: {
    config: Config;
    accounts: AccountService;
    store: MembershipSource;
    messaging: MessagePoster;
    log: Logger;
    registry?: Registry;
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
  const store = deps.walletStore ?? (await openWalletStore(config));
  const rp = config.redPackets;
  const redPackets = new RedPacketService(
    store,
    deps.store,
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
  registerWalletRoutes(http, { accounts: deps.accounts, redPackets, wallet, adminToken: config.adminToken, guardSend: deps.guardSend, onOpened: deps.onOpened });
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
