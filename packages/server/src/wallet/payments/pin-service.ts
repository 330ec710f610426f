import { MagpieError, type PinStatus } from '@magpie/protocol';
import type { PasswordHasher } from '../../util/passwords.ts';
import type { Principal } from '../../services/account-service.ts';
import type { PaymentsStore } from './payments-store.ts';

export interface PinOptions {
  /** Sending and withdrawing need the PIN. */
  required: boolean;
  /** Wrong tries in a row before the lock. */
  maxTries: number;
  lockMs: number;
}

const PIN = /^[0-9]{6}$/;

/**
 * The payment PIN: six digits, set once, hashed with scrypt like account passwords (through
 * the same bounded hasher), locked for `lockMs` after `maxTries` wrong tries in a row, and
 * replaced (lock lifted) by re-entering the account password. A try is counted before the
 * hash is checked, so guesses sent in parallel cannot pass the limit, and a locked PIN costs
 * no hash at all.
 */
export class PinService {
  constructor(
    private readonly store: PaymentsStore,
    private readonly hasher: Pick<PasswordHasher, 'hash' | 'verify'>,
    private readonly accounts: { confirmPassword(p: Principal, password: string, ip?: string): Promise<void> },
    readonly opts: PinOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async status(userId: string): Promise<PinStatus> {
    const pin = await this.store.getPin(userId);
    const now = this.now();
    const locked = pin !== null && pin.lockedUntil > now;
    const counted = pin === null || (pin.lockedUntil > 0 && !locked) ? 0 : pin.attempts;
    return { set: pin !== null, required: this.opts.required, lockedUntil: locked ? pin.lockedUntil : null, triesLeft: locked ? 0 : Math.max(0, this.opts.maxTries - counted) };
  }

  /** Set the PIN; only once (`conflict` pin_already_set afterwards: reset it with the password). */
  async set(userId: string, pin: string): Promise<PinStatus> {
    checkFormat(pin);
    if (await this.store.getPin(userId)) throw alreadySet();
    const hash = await this.hasher.hash(pin);
    if (!(await this.store.setPin(userId, hash, this.now(), false))) throw alreadySet();
    return this.status(userId);
  }

  /** Replace the PIN after checking the account password (`bad_credentials` when wrong); lifts a lock. */
  async reset(p: Principal, password: string, pin: string, ip?: string): Promise<PinStatus> {
    checkFormat(pin);
    await this.accounts.confirmPassword(p, password, ip);
    await this.store.setPin(p.userId, await this.hasher.hash(pin), this.now(), true);
    return this.status(p.userId);
  }

  /** Refuse unless `pin` is this user's PIN (when PINs are required). */
  async guard(userId: string, pin: string | undefined): Promise<void> {
    if (!this.opts.required) return;
    if (pin === undefined) {
      const set = (await this.store.getPin(userId)) !== null;
      throw new MagpieError('forbidden', set ? 'the payment PIN is required' : 'set a payment PIN first', { details: { reason: set ? 'pin_required' : 'pin_not_set' } });
    }
    await this.verify(userId, pin);
  }

  /** Check a PIN: `forbidden` with reason pin_not_set, pin_locked (lockedUntil, retryAfterMs) or pin_wrong (triesLeft). */
  async verify(userId: string, pin: string): Promise<void> {
    checkFormat(pin);
    const now = this.now();
    const slot = await this.store.reserveAttempt(userId, now, this.opts.maxTries);
    if (slot.result === 'none') throw new MagpieError('forbidden', 'set a payment PIN first', { details: { reason: 'pin_not_set' } });
    if (slot.result === 'locked') throw locked(slot.lockedUntil || now + 1000, now);
    const record = await this.store.getPin(userId);
    const ok = record !== null && (await this.hasher.verify(pin, record.hash));
    if (ok) {
      await this.store.clearAttempts(userId);
      return;
    }
    if (slot.attempts >= this.opts.maxTries) {
      const until = this.now() + this.opts.lockMs;
      await this.store.lock(userId, until);
      throw locked(until, this.now());
    }
    const triesLeft = this.opts.maxTries - slot.attempts;
    throw new MagpieError('forbidden', `wrong payment PIN (${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left)`, { details: { reason: 'pin_wrong', triesLeft } });
  }
}

function checkFormat(pin: string): void {
  if (!PIN.test(pin)) throw new MagpieError('invalid', 'a payment PIN is six digits', { details: { reason: 'pin_format' } });
}

function alreadySet(): MagpieError {
  return new MagpieError('conflict', 'a payment PIN is set already; reset it with the account password', { details: { reason: 'pin_already_set' } });
}

function locked(until: number, now: number): MagpieError {
  return new MagpieError('forbidden', 'the payment PIN is locked after too many wrong tries', { details: { reason: 'pin_locked', lockedUntil: until }, retryAfterMs: Math.max(1, until - now) });
}
