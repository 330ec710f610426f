import { MagpieError, PLATFORM_CLASS, usernameKey, type Platform, type PublicUser } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import { StoreConflictError, type SessionRecord, type Store, type UserRecord } from '../store/store.ts';
import { hashToken, newToken, timeId } from '../util/ids.ts';
import { PasswordHasher, type HasherLimits } from '../util/passwords.ts';
import { checkPasswordStrength } from '../util/password-policy.ts';
import { LoginThrottle, type LoginThrottleLimits } from './login-throttle.ts';

export interface AccountPolicy {
  tokenTtlMs: number;
  /** Live sessions allowed per platform class; the oldest beyond it is kicked. */
  devicesPerPlatformClass: number;
  /** Minimum zxcvbn score (0–4) of a new password; 0 turns the check off. Default 2. */
  minPasswordScore?: number;
  /** Default: the `auth` defaults of config.ts. */
  hasher?: HasherLimits;
  throttle?: LoginThrottleLimits;
}

/** The `auth` defaults of config.ts, for services built without a config (tests). */
const DEFAULT_HASHER: HasherLimits = { concurrency: 2, queue: 64 };
const DEFAULT_THROTTLE: LoginThrottleLimits = { freeFailures: 3, backoffBaseMs: 1000, backoffMaxMs: 30_000, forgetAfterMs: 15 * 60_000, ipFailuresPerMinute: 30, ipFailureBurst: 30 };

/** Nickname an account shows after its owner deleted it. */
export const DELETED_NICKNAME = 'Deleted account';

export interface Principal {
  userId: string;
  deviceId: string;
  platform: Platform;
  tokenHash: string;
  appVersion: string;
}

export interface LoginInput {
  username: string;
  password: string;
  deviceId: string;
  platform: Platform;
  appVersion?: string;
  /** The client's address, for the per-IP failure budget. */
  ip?: string;
}

/** Runs when sessions end (logout, logout-all, displaced by a new login), before that call returns. */
export type SessionsEndedListener = (sessions: SessionRecord[], reason: EndReason) => Promise<void> | void;

/** Why sessions end; the kick event's reason (`admin` closes with `kicked{reason:"admin"}`). */
export type EndReason = 'new_login' | 'logout' | 'logout_all' | 'admin';

/** Runs after an account became a tombstone (groups, friends: see docs/protocol.md "Deleting an account"). */
export type AccountDeletedListener = (userId: string) => Promise<void> | void;

/** Accounts, passwords, sessions and the multi-device policy. */
export class AccountService {
  private readonly endedListeners: SessionsEndedListener[] = [];
  private readonly deletedListeners: AccountDeletedListener[] = [];
  private readonly registeredListeners: ((user: PublicUser) => void)[] = [];
  private readonly hasher: PasswordHasher;
  private readonly throttle: LoginThrottle;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly policy: AccountPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.hasher = new PasswordHasher(policy.hasher ?? DEFAULT_HASHER);
    this.throttle = new LoginThrottle(policy.throttle ?? DEFAULT_THROTTLE, now);
  }

  async register(username: string, password: string, nickname?: string): Promise<PublicUser> {
    // A taken name is answered before the password is judged (and before scrypt).
    if (await this.store.getUserByUsername(username)) throw new MagpieError('conflict', 'username is taken');
    await checkPasswordStrength(password, (this.policy.minPasswordScore ?? 2), [username, nickname ?? '']);
    const passwordHash = await this.hasher.hash(password);
    try {
      const user = publicUser(await this.store.createUser({ id: timeId('u'), username, passwordHash, nickname: nickname ?? username, createdAt: this.now() }));
      for (const l of this.registeredListeners) l(user);
      return user;
    } catch (err) {
      if (err instanceof StoreConflictError) throw new MagpieError('conflict', 'username is taken');
      throw err;
    }
  }

  async login(input: LoginInput): Promise<{ token: string; userId: string; deviceId: string; expiresAt: number }> {
    const user = await this.store.getUserByUsername(input.username);
    const key = await this.throttleKey(usernameKey(input.username), user, input.deviceId);
    await this.checkPassword(key, input.ip, input.password, user);
    if (!user) throw new MagpieError('bad_credentials');
    if (user.disabledAt !== null) throw new MagpieError('account_disabled');
    const now = this.now();
    const token = newToken();
    const session = {
      tokenHash: hashToken(token),
      userId: user.id,
      deviceId: input.deviceId,
      platform: input.platform,
      appVersion: input.appVersion ?? '',
      createdAt: now,
      expiresAt: now + this.policy.tokenTtlMs,
    };
    await this.enforceDevicePolicy(session);
    await this.store.createSession(session);
    return { token, userId: user.id, deviceId: input.deviceId, expiresAt: session.expiresAt };
  }

  /**
   * The throttle key of a password check: the normalized name, plus the device when it has
   * logged in to this account before (so an attacker's failures do not delay the owner's device).
   */
  private async throttleKey(nameKey: string, user: UserRecord | null, deviceId: string): Promise<string> {
    return user && (await this.store.knownDevice(user.id, deviceId)) ? `${nameKey}\u0000${deviceId}` : nameKey;
  }

  /**
   * Verify a password under the backoff: refused with `rate_limited` while the key or IP
   * waits (before any scrypt work); a failure counts and answers `bad_credentials`.
   * An unknown user is verified against a dummy hash so timing does not reveal usernames.
   */
  private async checkPassword(key: string, ip: string | undefined, password: string, user: UserRecord | null): Promise<void> {
    const wait = this.throttle.wait(key, ip);
    if (wait > 0) throw new MagpieError('rate_limited', 'too many failed attempts; retry later', { retryAfterMs: wait });
    const ok = await this.hasher.verify(password, user?.passwordHash || DUMMY_HASH);
    if (!user || !ok || user.deletedAt !== null) {
      this.throttle.failure(key, ip);
      throw new MagpieError('bad_credentials');
    }
    this.throttle.success(key);
  }

  /** Check the password of a signed-in user (payment PIN reset), under the same backoff as a login: `bad_credentials` when wrong. */
  async confirmPassword(p: Principal, password: string, ip?: string): Promise<void> {
    const user = await this.liveUser(p.userId);
    await this.checkPassword(`${usernameKey(user.username)}\u0000${p.deviceId}`, ip, password, user);
  }

  /** Change the password (the current one is required); every other session is revoked. Returns how many. */
  async changePassword(p: Principal, currentPassword: string, newPassword: string, ip?: string): Promise<number> {
    const user = await this.liveUser(p.userId);
    await this.checkPassword(`${usernameKey(user.username)}\u0000${p.deviceId}`, ip, currentPassword, user);
    if (newPassword === currentPassword) throw new MagpieError('weak_password', 'The new password is the current one.');
    await checkPasswordStrength(newPassword, (this.policy.minPasswordScore ?? 2), [user.username, user.nickname]);
    if (!(await this.store.setPasswordHash(user.id, await this.hasher.hash(newPassword)))) throw new MagpieError('not_found', 'no such user');
    const others = (await this.store.listSessions(user.id, this.now())).filter((s) => s.tokenHash !== p.tokenHash);
    return (await this.revoke(others, 'logout_all')).length;
  }

  /**
   * Delete the caller's account (the password is required): the user row becomes a tombstone
   * (no login, nickname "Deleted account", username reserved), every session is revoked, then
   * the deleted-account listeners run (groups, friends).
   */
  async deleteAccount(p: Principal, password: string, ip?: string): Promise<void> {
    const user = await this.liveUser(p.userId);
    await this.checkPassword(`${usernameKey(user.username)}\u0000${p.deviceId}`, ip, password, user);
    if (!(await this.store.markUserDeleted(user.id, this.now(), DELETED_NICKNAME))) throw new MagpieError('not_found', 'no such user');
    await this.revoke(await this.store.listSessions(user.id, this.now()), 'logout_all');
    for (const l of this.deletedListeners) await l(user.id);
  }

  /** Called after each new account is stored (not awaited; must not throw). */
  onRegistered(listener: (user: PublicUser) => void): void {
    this.registeredListeners.push(listener);
  }

  /** Operator: delete an account as its owner would (no password; erasure requests). */
  async adminDeleteAccount(userId: string): Promise<void> {
    const user = await this.store.getUser(userId);
    if (!user) throw new MagpieError('not_found', 'no such user');
    if (user.deletedAt !== null) throw new MagpieError('conflict', 'the account is already deleted');
    if (!(await this.store.markUserDeleted(user.id, this.now(), DELETED_NICKNAME))) throw new MagpieError('not_found', 'no such user');
    await this.revoke(await this.store.listSessions(user.id, this.now()), 'logout_all');
    for (const l of this.deletedListeners) await l(user.id);
  }

  /** Register a listener for deleted accounts; a failing listener fails the delete call (the tombstone stays; retrying is not possible, so listeners should be best effort). */
  onAccountDeleted(listener: AccountDeletedListener): void {
    this.deletedListeners.push(listener);
  }

  /** Operator: disable (no login, no connection; every session is revoked with `kicked{reason:"admin"}`) or enable an account. */
  async setDisabled(userId: string, disabled: boolean): Promise<{ user: PublicUser & { disabled: boolean }; revoked: number }> {
    const user = await this.store.setUserDisabled(userId, disabled ? this.now() : null);
    if (!user) throw new MagpieError('not_found', 'no such user');
    const revoked = disabled ? await this.revokeAll(userId, 'admin') : 0;
    return { user: { ...publicUser(user), disabled }, revoked };
  }

  /** Operator: set a new password (not judged by the strength policy: it is a random temporary one) and end every session. */
  async adminSetPassword(userId: string, password: string): Promise<number> {
    const user = await this.store.getUser(userId);
    if (!user || user.deletedAt !== null) throw new MagpieError('not_found', 'no such user');
    await this.store.setPasswordHash(userId, await this.hasher.hash(password));
    return this.revokeAll(userId, 'admin');
  }

  /** Operator: revoke every session of a user (`kicked{reason:"admin"}` on each open socket). */
  async adminRevokeAll(userId: string): Promise<number> {
    if (!(await this.store.getUser(userId))) throw new MagpieError('not_found', 'no such user');
    return this.revokeAll(userId, 'admin');
  }

  private async revokeAll(userId: string, reason: EndReason): Promise<number> {
    return (await this.revoke(await this.store.listSessions(userId, this.now()), reason)).length;
  }

  private async liveUser(userId: string): Promise<UserRecord> {
    const user = await this.store.getUser(userId);
    if (!user || user.deletedAt !== null) throw new MagpieError('unauthorized', 'the account no longer exists');
    return user;
  }

  /** Revoke what the new session displaces: the same device's old sessions, and the oldest of its platform class beyond the limit. */
  private async enforceDevicePolicy(next: { userId: string; deviceId: string; platform: Platform }): Promise<void> {
    const live = await this.store.listSessions(next.userId, this.now());
    const sameDevice = live.filter((s) => s.deviceId === next.deviceId);
    const sameClass = live.filter((s) => s.deviceId !== next.deviceId && PLATFORM_CLASS[s.platform] === PLATFORM_CLASS[next.platform]);
    // Oldest first: keep the newest (limit - 1) so the new one fits.
    const excess = sameClass.slice(0, Math.max(0, sameClass.length - (this.policy.devicesPerPlatformClass - 1)));
    const victims = [...sameDevice, ...excess];
    if (victims.length === 0) return;
    await this.revoke(victims, 'new_login', next.deviceId);
  }

  /** Resolve a bearer token to its live session; throws `unauthorized`. */
  authenticate(token: string | undefined): Promise<Principal> {
    // Not an async function: it runs on every API request (one promise and frame fewer; issue 16).
    if (!token) return Promise.reject(new MagpieError('unauthorized', 'missing token'));
    let hash: string;
    try {
      hash = hashToken(token);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.store.getSessionAndUser(hash, this.now()).then(this.principalOf);
  }

  /** authenticate's answer from the session read (made once). */
  private readonly principalOf = (found: Awaited<ReturnType<Store['getSessionAndUser']>>): Principal => {
    if (!found) throw new MagpieError('unauthorized', 'token is unknown, expired or revoked');
    // A session created while the account was being disabled or deleted escapes that revocation: the user row decides.
    const { session: s, user } = found;
    if (!user || user.deletedAt !== null || user.disabledAt !== null) {
      void this.store.revokeSessions([s.tokenHash], this.now()).catch(() => undefined);
      throw new MagpieError('unauthorized', user?.disabledAt != null && user.deletedAt === null ? 'the account is disabled' : 'the account no longer exists');
    }
    return { userId: s.userId, deviceId: s.deviceId, platform: s.platform, tokenHash: s.tokenHash, appVersion: s.appVersion };
  };

  /** This service's clock (sessions are live while expiresAt > time()). */
  time(): number {
    return this.now();
  }

  /** When the session `tokenHash` ends, or null when it is not live (revoked, expired, unknown). */
  async sessionExpiresAt(tokenHash: string): Promise<number | null> {
    const s = await this.store.getSession(tokenHash, this.now());
    return s ? s.expiresAt : null;
  }

  async logout(p: Principal): Promise<void> {
    const revoked = await this.store.revokeSessions([p.tokenHash], this.now());
    this.kick(p.userId, revoked, 'logout');
    await this.ended(revoked, 'logout');
  }

  /** Register a listener for ended sessions (offline push unbinds the device's token). */
  onSessionsEnded(listener: SessionsEndedListener): void {
    this.endedListeners.push(listener);
  }

  private async ended(sessions: SessionRecord[], reason: EndReason): Promise<void> {
    if (sessions.length === 0) return;
    for (const l of this.endedListeners) {
      try {
        await l(sessions, reason);
      } catch {
        // Best effort by contract: the sessions are revoked either way.
      }
    }
  }

  async logoutAll(p: Principal): Promise<number> {
    return this.revokeAll(p.userId, 'logout_all');
  }

  async getUser(id: string): Promise<PublicUser> {
    const u = await this.store.getUser(id);
    if (!u) throw new MagpieError('not_found', 'no such user');
    return publicUser(u);
  }

  private async revoke(sessions: SessionRecord[], reason: EndReason, byDevice?: string): Promise<SessionRecord[]> {
    const revoked = await this.store.revokeSessions(
      sessions.map((s) => s.tokenHash),
      this.now(),
    );
    if (revoked[0]) this.kick(revoked[0].userId, revoked, reason, byDevice);
    await this.ended(revoked, reason);
    return revoked;
  }

  private kick(userId: string, sessions: SessionRecord[], reason: EndReason, byDevice?: string): void {
    if (sessions.length === 0) return;
    this.bus.publish({ type: 'kick', userId, tokenHashes: sessions.map((s) => s.tokenHash), reason, ...(byDevice !== undefined ? { device: byDevice } : {}) });
  }
}

const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, username: u.username, nickname: u.nickname };
}
