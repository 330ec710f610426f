import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FailureScript, Inbox, readBody, verifyJwt } from './common.ts';

export interface FcmReceived {
  token: string;
  message: Record<string, any>;
  at: number;
}

type FcmFailure = 'UNAVAILABLE' | 'INTERNAL' | 'QUOTA_EXCEEDED';

/**
 * A local FCM HTTP v1 endpoint and OAuth2 token endpoint.
 *
 * - POST /token: grant_type jwt-bearer; the RS256 assertion must verify with the service
 *   account's key and carry iss, the firebase.messaging scope and aud = this URL.
 * - POST /v1/projects/<id>/messages:send with `Bearer <access token>`: 200 {name}, or the
 *   error bodies FCM sends: 404 UNREGISTERED, 400 INVALID_ARGUMENT (with a fieldViolation on
 *   message.token for a malformed token), 401 UNAUTHENTICATED for an unknown access token,
 *   and scripted 503 UNAVAILABLE / 429 QUOTA_EXCEEDED with Retry-After.
 */
export class FakeFcm {
  readonly received = new Inbox<FcmReceived>();
  readonly unregistered = new Set<string>();
  /** Tokens FCM calls malformed (INVALID_ARGUMENT on message.token). */
  readonly invalid = new Set<string>();
  readonly failures = new FailureScript<{ code: FcmFailure; retryAfter?: number }>();
  readonly projectId = 'magpie-test';
  readonly serviceAccount: { type: string; client_email: string; private_key: string; private_key_id: string; token_uri: string };
  readonly log: [string, number][] = [];
  private readonly publicKey: KeyObject;
  private readonly accessTokens = new Set<string>();
  tokenRequests = 0;
  private server!: Server;
  url = '';
  delayMs = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = publicKey;
    this.serviceAccount = {
      type: 'service_account',
      client_email: 'push@magpie-test.iam.gserviceaccount.com',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      private_key_id: 'k1',
      token_uri: '',
    };
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.serviceAccount.token_uri = `${this.url}/token`;
    return this;
  }

  /** Forget issued access tokens (as if they expired): the next send gets 401. */
  revokeAccessTokens(): void {
    this.accessTokens.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const json = (status: number, o: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
      res.end(JSON.stringify(o));
    };
    if (req.method === 'POST' && req.url === '/token') return this.token(body.toString(), json);
    const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) return json(404, fcmError(404, 'NOT_FOUND', 'Requested entity was not found.'));
    const auth = String(req.headers.authorization ?? '');
    if (!auth.startsWith('Bearer ') || !this.accessTokens.has(auth.slice(7))) {
      return json(401, { error: { code: 401, message: 'Request had invalid authentication credentials. Expected OAuth 2 access token.', status: 'UNAUTHENTICATED' } });
    }
    if (m[1] !== this.projectId) return json(403, { error: { code: 403, message: 'Permission denied on project', status: 'PERMISSION_DENIED' } });
    let msg: Record<string, any>;
    try {
      msg = (JSON.parse(body.toString()) as { message: Record<string, any> }).message;
      if (typeof msg !== 'object' || msg === null) throw new Error();
    } catch {
      return json(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.'));
    }
    const token = String(msg.token ?? '');
    const reply = (status: number, o: unknown, headers?: Record<string, string>) => {
      this.log.push([token, status]);
      json(status, o, headers);
    };
    if (msg.data && Object.values(msg.data as object).some((v) => typeof v !== 'string')) {
      return reply(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at \'message.data\': values must be strings', 'message.data'));
    }
    if (!/^[\w:.-]{16,4096}$/.test(token) || this.invalid.has(token)) {
      return reply(400, fcmError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token', 'message.token'));
    }
    if (this.unregistered.has(token)) return reply(404, fcmError(404, 'UNREGISTERED', 'Requested entity was not found.', undefined, 'NOT_FOUND'));
    const fail = this.failures.take(token);
    if (fail) {
      const status = fail.code === 'QUOTA_EXCEEDED' ? 429 : fail.code === 'INTERNAL' ? 500 : 503;
      const grpc = fail.code === 'QUOTA_EXCEEDED' ? 'RESOURCE_EXHAUSTED' : fail.code;
      return reply(status, fcmError(status, fail.code, 'The service is currently unavailable.', undefined, grpc), fail.retryAfter !== undefined ? { 'retry-after': String(fail.retryAfter) } : {});
    }
    this.received.push({ token, message: msg, at: Date.now() });
    reply(200, { name: `projects/${this.projectId}/messages/${randomBytes(8).toString('hex')}` });
  }

  private token(form: string, json: (s: number, o: unknown) => void): void {
    this.tokenRequests++;
    const p = new URLSearchParams(form);
    if (p.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return json(400, { error: 'unsupported_grant_type' });
    try {
      const { claims } = verifyJwt(p.get('assertion') ?? '', this.publicKey, 'RS256');
      if (claims.iss !== this.serviceAccount.client_email) throw new Error('iss');
      if (claims.aud !== `${this.url}/token`) throw new Error('aud');
      if (claims.scope !== 'https://www.googleapis.com/auth/firebase.messaging') throw new Error('scope');
      if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) throw new Error('exp');
    } catch (err) {
      return json(400, { error: 'invalid_grant', error_description: `Invalid JWT: ${(err as Error).message}` });
    }
    const access = `ya29.${randomBytes(24).toString('base64url')}`;
    this.accessTokens.add(access);
    json(200, { access_token: access, expires_in: 3599, token_type: 'Bearer' });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** FCM v1 error body: google.rpc.Status with an FcmError detail (and a BadRequest field violation). */
function fcmError(code: number, errorCode: string, message: string, field?: string, status?: string): unknown {
  const details: unknown[] = [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }];
  if (field) details.push({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description: message }] });
  return { error: { code, message, status: status ?? errorCode, details } };
}

/** A random FCM-style registration token. */
export function fcmToken(): string {
  return `${randomBytes(11).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`;
}
