import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { SqlEngine } from '../../db/engine.ts';
import type { RestApi } from '../../http/rest.ts';
import type { AccountService } from '../../services/account-service.ts';
import { PasswordHasher } from '../../util/passwords.ts';
import type { WalletStore } from '../wallet-store.ts';
import { SandboxProvider, type PaymentProvider } from './payment-provider.ts';
import { registerPaymentRoutes } from './payment-routes.ts';
import type { PaymentsStore } from './payments-store.ts';
import { PaymentsService } from './payments-service.ts';
import { PinService } from './pin-service.ts';
import { SqlPaymentsStore } from './sql-payments-store.ts';

export { PinService } from './pin-service.ts';
export { PaymentsService } from './payments-service.ts';
export { SandboxProvider, type PaymentProvider, type ProviderRequest, type ProviderTopUp, type ProviderPayout } from './payment-provider.ts';
export { SqlPaymentsStore } from './sql-payments-store.ts';
export type { PaymentsStore } from './payments-store.ts';

export interface PaymentsModule {
  store: PaymentsStore;
  pins: PinService;
  payments: PaymentsService;
  provider: PaymentProvider;
  start(): void;
  stop(): Promise<void>;
}

/** The provider for this configuration: only the sandbox ships; a real gateway is passed in as `provider`. */
export function configuredProvider(config: Config): PaymentProvider {
  return new SandboxProvider({ payout: config.payments.sandboxPayout });
}

/**
 * The PIN service alone (the red-packet routes need it before the wallet store exists), and
 * the rest of payments once the wallet store does.
 */
export function createPinService(deps: { config: Config; db: SqlEngine; accounts: AccountService; now?: () => number }): { store: PaymentsStore; pins: PinService } {
  const { config } = deps;
  const store = new SqlPaymentsStore(deps.db);
  const a = config.auth;
  const hasher = new PasswordHasher({ concurrency: a.hashConcurrency, queue: a.hashQueue });
  const p = config.payments;
  const pins = new PinService(store, hasher, deps.accounts, { required: p.pinRequired, maxTries: p.pinMaxTries, lockMs: p.pinLockMs }, deps.now);
  return { store, pins };
}

/** Top-ups and withdrawals through the provider, and their routes (plus the PIN routes). */
export function createPaymentsModule(
  api: RestApi,
  deps: { config: Config; store: PaymentsStore; pins: PinService; wallet: WalletStore; provider?: PaymentProvider; log?: Logger; now?: () => number },
): PaymentsModule {
  const { config } = deps;
  const provider = deps.provider ?? configuredProvider(config);
  const payments = new PaymentsService(
    deps.store,
    deps.wallet,
    provider,
    deps.pins,
    { limits: config.wallet, recoverAfterMs: config.payments.recoverAfterMs, recoverIntervalMs: config.payments.recoverIntervalMs },
    { log: deps.log, now: deps.now },
  );
  registerPaymentRoutes(api, { pins: deps.pins, payments });
  return {
    store: deps.store,
    pins: deps.pins,
    payments,
    provider,
    start: () => payments.start(),
    stop: () => payments.stop(),
  };
}
