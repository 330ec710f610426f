import type { ConvEntry, Message, Platform, PublicUser, TelemetryReport } from '@magpie/protocol';
import { isErrorCode } from './protocol-constants.ts';
import { MagpieClientError, type MagpieClientErrorCode } from './errors.ts';
import type { ConvsResult, HistoryResult } from './wire.ts';

/** The part of the Fetch API the SDK uses (the global fetch of browsers and Node 18+ fits). */
export type FetchLike = (
  url: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

export interface RestOptions {
  /** Server origin, e.g. `http://localhost:8080`; `/api/...` is appended. */
  baseUrl: string;
  fetch?: FetchLike;
}

export interface RegisterInput {
  username: string;
  password: string;
  nickname?: string;
}

export interface LoginInput {
  username: string;
  password: string;
  deviceId: string;
  platform: Platform;
  appVersion?: string;
}

export interface LoginResult {
  token: string;
  userId: string;
  deviceId: string;
  expiresAt: number;
}

/** A client's RestApi: needs `baseUrl` and a fetch (given, or the global one); null otherwise. */
export function restApiOf(o: { baseUrl?: string; fetch?: FetchLike }): RestApi | null {
  if (!o.baseUrl || !(o.fetch || (globalThis as { fetch?: unknown }).fetch)) return null;
  return new RestApi(o.fetch ? { baseUrl: o.baseUrl, fetch: o.fetch } : { baseUrl: o.baseUrl });
}

/** The HTTP API under /api. Errors are MagpieClientError with the server's code and HTTP status. */
export class RestApi {
  private readonly base: string;
  private readonly fetchFn: FetchLike;

  constructor(opts: RestOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    const global = (globalThis as { fetch?: FetchLike }).fetch;
    // Browsers throw "Illegal invocation" when fetch is called with another `this`.
    const f = opts.fetch ?? global?.bind(globalThis);
    if (!f) throw new MagpieClientError('network', 'no fetch implementation: pass `fetch` in the options');
    this.fetchFn = f;
  }

  register(input: RegisterInput): Promise<{ user: PublicUser }> {
    return this.request('POST', '/api/register', { body: input });
  }

  login(input: LoginInput): Promise<LoginResult> {
    return this.request('POST', '/api/login', { body: input });
  }

  /** Connect telemetry (telemetry.ts); the session token is optional. */
  telemetryConnect(report: TelemetryReport, token?: string): Promise<{ accepted: number }> {
    return this.request('POST', '/api/telemetry/connect', { body: report, ...(token ? { token } : {}) });
  }

  logout(token: string): Promise<{ ok: true }> {
    return this.request('POST', '/api/logout', { token });
  }

  logoutAll(token: string): Promise<{ revoked: number }> {
    return this.request('POST', '/api/logout-all', { token });
  }

  me(token: string): Promise<{ user: PublicUser }> {
    return this.request('GET', '/api/me', { token });
  }

  conversations(token: string, since = 0): Promise<ConvsResult & { entries: ConvEntry[] }> {
    return this.request('GET', `/api/conversations?since=${since}`, { token });
  }

  messages(token: string, conv: string, q: { before?: number; after?: number; limit?: number } = {}): Promise<HistoryResult & { messages: Message[] }> {
    const params = new URLSearchParams();
    if (q.before !== undefined) params.set('before', String(q.before));
    if (q.after !== undefined) params.set('after', String(q.after));
    if (q.limit !== undefined) params.set('limit', String(q.limit));
    const qs = params.toString();
    return this.request('GET', `/api/conversations/${encodeURIComponent(conv)}/messages${qs ? `?${qs}` : ''}`, { token });
  }

  /** One call under /api with the SDK's error mapping (MagpieClientError with the server's code and the HTTP status). */
  async request<T>(method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      const init: Parameters<FetchLike>[1] = { method, headers };
      if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
      res = await this.fetchFn(`${this.base}${path}`, init);
    } catch (err) {
      throw new MagpieClientError('network', `${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const text = await res.text().catch(() => '');
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        if (res.ok) throw new MagpieClientError('bad_response', `${method} ${path}: the response is not JSON`, { status: res.status });
      }
    }
    if (res.ok) return json as T;
    const e = (json as { error?: { code?: unknown; message?: unknown; details?: unknown; retryAfterMs?: unknown } } | undefined)?.error;
    const code: MagpieClientErrorCode = isErrorCode(e?.code)
      ? e.code
      : typeof e?.code === 'string' && e.code
        ? (e.code as MagpieClientErrorCode)
        : res.status >= 500
          ? 'internal'
          : 'bad_response';
    const extra: { status: number; details?: unknown; retryAfterMs?: number } = { status: res.status };
    if (e?.details !== undefined) extra.details = e.details;
    if (typeof e?.retryAfterMs === 'number') extra.retryAfterMs = e.retryAfterMs;
    throw new MagpieClientError(code, typeof e?.message === 'string' ? e.message : `${method} ${path}: HTTP ${res.status}`, extra);
  }
}

/** A session token, or a function that returns the current one. */
export type TokenSource = string | (() => string | null | undefined);

/**
 * The one authenticated-REST base of the SDK's REST clients (groups, social, wallet, media,
 * search, notifications, lifecycle, receipts settings): each call carries the current token,
 * a call without one fails with `unauthorized` before any request, and errors are mapped once
 * (RestApi.request).
 */
export class AuthedRest {
  private readonly token: () => string | null | undefined;

  constructor(
    readonly api: RestApi,
    token: TokenSource,
  ) {
    this.token = typeof token === 'function' ? token : () => token;
  }

  req<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = this.token();
    if (!token) return Promise.reject(new MagpieClientError('unauthorized', 'no session token'));
    return this.api.request<T>(method, path, body === undefined ? { token } : { token, body });
  }
}
