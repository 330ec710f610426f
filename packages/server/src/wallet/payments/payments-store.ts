import type { PaymentKind, PaymentStatus } from '@magpie/protocol';

/**
 * PaymentsStore: payment PINs and the requests that move money in and out through the
 * payment provider. One implementation on the shared engine (sql-payments-store.ts) serves
 * SQLite and PostgreSQL; tables in db/migrations/0010-payments.ts.
 *
 * Guarantees:
 * - A resolved promise means the change is durable; a rejected one stored nothing.
 * - `reserveAttempt` counts a PIN try before the hash is checked, in one statement, so
 *   parallel guesses cannot pass the limit; a locked PIN is refused without a try.
 * - `createRequest` is idempotent per (user, clientId).
 * - `transition` is a compare-and-set on the status: one caller wins each transition.
 * - Money never moves here: the wallet's ledger does that (reference `pay:<id>`).
 */
export interface PaymentsStore {
  getPin(userId: string): Promise<PinRecord | null>;
  /** Store a PIN hash. `replace: false` only when none is set (false if one is); `replace: true` also clears tries and lock. */
  setPin(userId: string, hash: string, now: number, replace: boolean): Promise<boolean>;
  /**
   * Reserve one PIN try. `reserved`: go ahead and check the hash (`attempts` counts this try).
   * `locked`: refused without a try (`lockedUntil` 0 when `maxTries` tries are still in flight).
   * `none`: no PIN is set. A lock that has run out starts a fresh count.
   */
  reserveAttempt(userId: string, now: number, maxTries: number): Promise<{ result: 'reserved'; attempts: number } | { result: 'locked'; lockedUntil: number } | { result: 'none' }>;
  /** A right PIN: tries back to 0. */
  clearAttempts(userId: string): Promise<void>;
  /** Lock until `until` (the try that reached the limit was wrong). */
  lock(userId: string, until: number): Promise<void>;

  createRequest(r: NewPaymentRequest): Promise<{ record: PaymentRecord; duplicate: boolean }>;
  getRequest(id: string): Promise<PaymentRecord | null>;
  /** Move a request from one of `from` to `to`; null when its status was not in `from` (someone else moved it). */
  transition(id: string, from: readonly PaymentStatus[], to: PaymentStatus, change: { reason?: string | null; providerRef?: string | null; now: number }): Promise<PaymentRecord | null>;
  /** A user's requests, newest first, created before `before`. */
  listRequests(userId: string, q: { before?: number; limit: number }): Promise<PaymentRecord[]>;
  /** Requests still `pending` and last changed before `before` (recovery after a crash). */
  pendingRequests(before: number, limit: number): Promise<PaymentRecord[]>;
  close(): Promise<void>;
}

export interface PinRecord {
  hash: string;
  attempts: number;
  /** 0 when not locked. */
  lockedUntil: number;
  updatedAt: number;
}

export interface NewPaymentRequest {
  id: string;
  userId: string;
  clientId: string;
  kind: PaymentKind;
  amount: number;
  provider: string;
  createdAt: number;
}

export interface PaymentRecord extends NewPaymentRequest {
  status: PaymentStatus;
  reason: string | null;
  providerRef: string | null;
  updatedAt: number;
}

/** The wallet ledger's reference of a payment request. */
export const ledgerReference = (requestId: string): string => `pay:${requestId}`;
