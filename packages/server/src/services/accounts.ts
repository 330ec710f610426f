import { MagpieError, PLATFORM_CLASS, type Platform, type PublicUser } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import { StoreConflictError, type SessionRecord, type Store, type UserRecord } from '../store/store.ts';
import { hashToken, newToken, timeId } from '../util/ids.ts';
import { hashPassword, verifyPassword } from '../util/passwords.ts';

export interface AccountPolicy {
  tokenTtlMs: number;
  /** Live sessions allowed per platform class; the oldest beyond it is kicked. */
  devicesPerPlatformClass: number;
}

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
}

/** Runs when sessions end (logout, logout-all, displaced by a new login), before that call returns. */
export type SessionsEndedListener = (sessions: SessionRecord[], reason: 'new_login' | 'logout' | 'logout_all') => Promise<void> | void;

/** Accounts, passwords, sessions and the multi-device policy. */
export class AccountService {
  private readonly endedListeners: SessionsEndedListener[] = [];

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly policy: AccountPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  async register(username: string, password: string, nickname?: string): Promise<PublicUser> {
    const passwordHash = await hashPassword(password);
    try {
      const user = await this.store.createUser({ id: timeId('u'), username, passwordHash, nickname: nickname ?? username, createdAt: this.now() });
      return publicUser(user);
    } catch (err) {
      if (err instanceof StoreConflictError) throw new MagpieError('conflict', 'username is taken');
      throw err;
    }
  }

  async login(input: LoginInput): Promise<{ token: string; userId: string; deviceId: string; expiresAt: number }> {
    const user = await this.store.getUserByUsername(input.username);
    // Verify against a dummy hash when the user is unknown so timing does not reveal usernames.
    const ok = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_HASH);
    if (!user || !ok) throw new MagpieError('bad_credentials');
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
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token) throw new MagpieError('unauthorized', 'missing token');
    const s = await this.store.getSession(hashToken(token), this.now());
    if (!s) throw new MagpieError('unauthorized', 'token is unknown, expired or revoked');
    return { userId: s.userId, deviceId: s.deviceId, platform: s.platform, tokenHash: s.tokenHash, appVersion: s.appVersion };
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

  private async ended(sessions: SessionRecord[], reason: 'new_login' | 'logout' | 'logout_all'): Promise<void> {
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
    const live = await this.store.listSessions(p.userId, this.now());
    return (await this.revoke(live, 'logout_all')).length;
  }

  async getUser(id: string): Promise<PublicUser> {
    const u = await this.store.getUser(id);
    if (!u) throw new MagpieError('not_found', 'no such user');
    return publicUser(u);
  }

  private async revoke(sessions: SessionRecord[], reason: 'new_login' | 'logout_all', byDevice?: string): Promise<SessionRecord[]> {
    const revoked = await this.store.revokeSessions(
      sessions.map((s) => s.tokenHash),
      this.now(),
    );
    if (revoked[0]) this.kick(revoked[0].userId, revoked, reason, byDevice);
    await this.ended(revoked, reason);
    return revoked;
  }

  private kick(userId: string, sessions: SessionRecord[], reason: 'new_login' | 'logout' | 'logout_all', byDevice?: string): void {
    if (sessions.length === 0) return;
    this.bus.publish({ type: 'kick', userId, tokenHashes: sessions.map((s) => s.tokenHash), reason, ...(byDevice !== undefined ? { device: byDevice } : {}) });
  }
}

const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, username: u.username, nickname: u.nickname };
}
