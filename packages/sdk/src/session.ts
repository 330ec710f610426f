import type { Platform } from '@magpie/protocol';
import { MagpieClientError } from './errors.ts';
import { executeInstruction, type Instruction } from './instructions.ts';
import type { LocalStore } from './local-store.ts';
import type { LoginInput, LoginResult, RestApi } from './rest.ts';
import type { WelcomeResult } from './wire.ts';

export type SessionLoginInput = Omit<LoginInput, 'deviceId' | 'platform'> & { deviceId?: string; platform?: Platform };

/** The app a client announces (`options.app`; the version cut to 32 characters). */
export function appOf(o: { app?: { version?: string; platform?: Platform } }): { version?: string; platform: Platform } {
  return { platform: o.app?.platform ?? 'other', ...(o.app?.version !== undefined ? { version: o.app.version.slice(0, 32) } : {}) };
}

/** What running an instruction needs besides the session. */
export interface InstructionPort {
  /** Forget the local data (the user stays known). */
  clearLocalData(): Promise<void>;
  /** The client's state for `upload_diagnostics`. */
  diagnostics(): Promise<Record<string, unknown>>;
  /** Report the outcome on the socket; null when there is none. */
  report(i: Instruction, ok: boolean, result: unknown): Promise<unknown> | null;
  executed(e: { instruction: Instruction; ok: boolean; result: unknown }): void;
}

/**
 * Who the client is: the session token, the user and device (kept in the local store), the
 * app it announces, the last welcome, and the configuration and instructions the server sends
 * to this session.
 */
export class Session {
  token: string | null;
  userId: string | null = null;
  deviceId: string | null = null;
  welcome: WelcomeResult | null = null;
  /** Configuration values set by the server (`set_config` instructions). */
  readonly remoteConfig: Record<string, unknown> = {};

  constructor(
    private readonly store: LocalStore,
    private readonly rest: RestApi | null,
    private readonly newId: () => string,
    readonly app: { version?: string; platform: Platform },
    token: string | null,
  ) {
    this.token = token;
  }

  /** Read the stored user and device. */
  async load(): Promise<void> {
    const meta = await this.store.loadMeta();
    this.userId = meta.userId;
    this.deviceId = meta.deviceId;
  }

  /** Log in over REST and keep the token (deviceId defaults to the stored one, or a new one). */
  async login(input: SessionLoginInput): Promise<LoginResult> {
    if (!this.rest) throw new MagpieClientError('network', 'login needs `baseUrl` (and a fetch implementation)');
    const deviceId = input.deviceId ?? this.deviceId ?? this.newId();
    const req: LoginInput = { username: input.username, password: input.password, deviceId, platform: input.platform ?? this.app.platform ?? 'other' };
    const appVersion = input.appVersion ?? this.app.version;
    if (appVersion !== undefined) req.appVersion = appVersion;
    const result = await this.rest.login(req);
    this.token = result.token;
    this.deviceId = result.deviceId;
    await this.store.saveMeta({ deviceId: result.deviceId });
    return result;
  }

  /** Revoke the session on the server (this device, or all of them) and forget the token. */
  async logout(all: boolean, clearLocalData: () => Promise<void>): Promise<void> {
    const token = this.token;
    this.token = null;
    await clearLocalData();
    if (token && this.rest) {
      if (all) await this.rest.logoutAll(token);
      else await this.rest.logout(token);
    }
  }

  /** The local data belongs to another user than the one welcomed (it must be forgotten). */
  isOtherUser(welcome: WelcomeResult): boolean {
    return this.userId !== null && this.userId !== welcome.userId;
  }

  /** Take the welcome's user and device (stored when they changed). */
  async adopt(welcome: WelcomeResult): Promise<void> {
    this.welcome = welcome;
    if (this.userId === welcome.userId && this.deviceId === welcome.deviceId) return;
    this.userId = welcome.userId;
    this.deviceId = welcome.deviceId;
    await this.store.saveMeta({ userId: welcome.userId, deviceId: welcome.deviceId });
  }

  /** Execute an instruction and report the outcome; false when it could not be done. */
  async runInstruction(i: Instruction, port: InstructionPort): Promise<boolean> {
    const { ok, result } = await executeInstruction(i, {
      resetLocalData: async () => {
        const userId = this.userId;
        await port.clearLocalData();
        this.userId = userId;
      },
      diagnostics: port.diagnostics,
      setConfig: (key, value) => {
        this.remoteConfig[key] = value;
      },
    });
    port.executed({ instruction: i, ok, result });
    await port.report(i, ok, result)?.catch(() => undefined);
    return ok;
  }
}
