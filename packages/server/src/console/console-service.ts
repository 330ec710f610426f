import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { MagpieError, type ConsoleRole } from '@magpie/protocol';
import type { SqlEngine } from '../db/index.ts';
import { hashPassword, verifyPassword } from '../util/passwords.ts';
import { hashToken, newToken, timeId } from '../util/ids.ts';

export interface ConsoleAdmin {
  id: string;
  username: string;
  role: ConsoleRole;
  totp: boolean;
  createdAt: number;
}

interface AdminRow {
  id: string;
  username: string;
  password_hash: string;
  role: ConsoleRole;
  totp_secret: string | null;
  totp_pending: string | null;
  created_at: number | string;
}

const toAdmin = (r: AdminRow): ConsoleAdmin => ({ id: r.id, username: r.username, role: r.role, totp: r.totp_secret !== null, createdAt: Number(r.created_at) });
const RANK: Record<ConsoleRole, number> = { viewer: 0, operator: 1, owner: 2 };
const totpOf = (secret: string, label = 'admin') => new TOTP({ issuer: 'Magpie console', label, secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });

/** A failed console login is answered after this delay at least (slows guessing; the hash dominates anyway). */
const FAIL_DELAY_MS = 300;

/**
 * Console admin accounts (their own, not app users), sessions with a lifetime, roles
 * (viewer < operator < owner), optional TOTP (RFC 6238, ±1 step), and the audit log every
 * admin action writes — also the operator-token actions, recorded as admin "token".
 */
export class ConsoleService {
  constructor(
    private readonly db: SqlEngine,
    private readonly opts: { sessionTtlMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  async createAdmin(username: string, password: string, role: ConsoleRole, by: string): Promise<ConsoleAdmin> {
    const row: AdminRow = { id: timeId('a'), username: username.normalize('NFKC').toLowerCase(), password_hash: await hashPassword(password), role, totp_secret: null, totp_pending: null, created_at: this.now() };
    const taken = await this.db.get(`SELECT 1 AS x FROM console_admins WHERE username = ?`, [row.username]);
    if (taken) throw new MagpieError('conflict', 'this console username is taken');
    await this.db.run(`INSERT INTO console_admins (id, username, password_hash, role, totp_secret, totp_pending, created_at) VALUES (?, ?, ?, ?, NULL, NULL, ?)`, [row.id, row.username, row.password_hash, row.role, row.created_at]);
    await this.audit(by, 'console.admin.create', row.id, { username: row.username, role });
    return toAdmin(row);
  }

  async login(username: string, password: string, totp: string | undefined): Promise<{ token: string; admin: ConsoleAdmin; expiresAt: number }> {
    const row = await this.db.get<AdminRow>(`SELECT * FROM console_admins WHERE username = ?`, [username.normalize('NFKC').toLowerCase()]);
    const ok = row ? await verifyPassword(password, row.password_hash) : false;
    if (!row || !ok) {
      await new Promise((r) => setTimeout(r, FAIL_DELAY_MS));
      throw new MagpieError('bad_credentials');
    }
    if (row.totp_secret) {
      if (!totp) throw new MagpieError('unauthorized', 'a TOTP code is required for this account');
      if (totpOf(row.totp_secret).validate({ token: totp, window: 1 }) === null) {
        await new Promise((r) => setTimeout(r, FAIL_DELAY_MS));
        throw new MagpieError('bad_credentials', 'wrong TOTP code');
      }
    }
    const token = newToken();
    const expiresAt = this.now() + this.opts.sessionTtlMs;
    await this.db.run(`INSERT INTO console_sessions (token_hash, admin_id, created_at, expires_at) VALUES (?, ?, ?, ?)`, [hashToken(token), row.id, this.now(), expiresAt]);
    await this.audit(row.username, 'console.login', row.id, {});
    return { token, admin: toAdmin(row), expiresAt };
  }

  /** The admin of a console token with at least `role`; `unauthorized` / `forbidden` otherwise. */
  async authenticate(token: string | undefined, role: ConsoleRole): Promise<ConsoleAdmin> {
    if (!token) throw new MagpieError('unauthorized', 'console token required');
    const row = await this.db.get<AdminRow>(
      `SELECT a.* FROM console_sessions s JOIN console_admins a ON a.id = s.admin_id WHERE s.token_hash = ? AND s.expires_at > ?`,
      [hashToken(token), this.now()],
    );
    if (!row) throw new MagpieError('unauthorized', 'the console session is unknown or expired');
    if (RANK[row.role] < RANK[role]) throw new MagpieError('forbidden', `this needs the ${role} role`);
    return toAdmin(row);
  }

  async logout(token: string): Promise<void> {
    await this.db.run(`DELETE FROM console_sessions WHERE token_hash = ?`, [hashToken(token)]);
  }

  async startTotp(admin: ConsoleAdmin): Promise<{ secret: string; uri: string }> {
    const secret = new Secret({ size: 20 }).base32;
    await this.db.run(`UPDATE console_admins SET totp_pending = ? WHERE id = ?`, [secret, admin.id]);
    return { secret, uri: totpOf(secret, admin.username).toString() };
  }

  async confirmTotp(admin: ConsoleAdmin, code: string): Promise<void> {
    const row = await this.db.get<AdminRow>(`SELECT * FROM console_admins WHERE id = ?`, [admin.id]);
    if (!row?.totp_pending) throw new MagpieError('invalid', 'start TOTP enrolment first');
    if (totpOf(row.totp_pending).validate({ token: code, window: 1 }) === null) throw new MagpieError('invalid', 'wrong code: check the device clock and try the current code');
    await this.db.run(`UPDATE console_admins SET totp_secret = totp_pending, totp_pending = NULL WHERE id = ?`, [admin.id]);
    await this.audit(admin.username, 'console.totp.enable', admin.id, {});
  }

  async admins(): Promise<ConsoleAdmin[]> {
    return (await this.db.all<AdminRow>(`SELECT * FROM console_admins ORDER BY created_at`)).map(toAdmin);
  }

  async audit(admin: string, action: string, target: string, detail: unknown): Promise<void> {
    await this.db.run(`INSERT INTO console_audit (admin, action, target, detail, at) VALUES (?, ?, ?, ?, ?)`, [admin, action, target, JSON.stringify(detail ?? {}), this.now()]);
  }

  async auditLog(before: number | undefined, limit: number): Promise<{ id: number; admin: string; action: string; target: string; detail: unknown; at: number }[]> {
    const rows = await this.db.all<{ id: number | string; admin: string; action: string; target: string; detail: string; at: number | string }>(
      `SELECT * FROM console_audit WHERE id < ? ORDER BY id DESC LIMIT ?`,
      [before ?? Number.MAX_SAFE_INTEGER, limit],
    );
    return rows.map((r) => ({ id: Number(r.id), admin: r.admin, action: r.action, target: r.target, detail: JSON.parse(r.detail) as unknown, at: Number(r.at) }));
  }
}

/** A random temporary password for a reset (shown once to the admin). */
export function temporaryPassword(): string {
  return randomBytes(12).toString('base64url');
}
