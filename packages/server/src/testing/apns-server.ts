import { createSecureServer, createServer, constants, type Http2Server, type Http2SecureServer, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FailureScript, Inbox, verifyJwt } from './common.ts';

export interface ApnsReceived {
  token: string;
  headers: Record<string, string>;
  payload: { aps: Record<string, any>; magpie: Record<string, string> };
  at: number;
}

/**
 * A local server that answers as APNs does (HTTP/2, token auth): POST /3/device/<token>
 * with `authorization: bearer <ES256 JWT>` (iss = team id, kid = key id), apns-topic,
 * apns-push-type. Answers 200 with apns-id; 400 BadDeviceToken for tokens that are not
 * hex or marked bad; 410 Unregistered (with timestamp) for unregistered tokens; 403
 * InvalidProviderToken for a JWT that does not verify; scripted 429 / 503 for retries.
 * TLS with a throwaway certificate when openssl is present, otherwise cleartext HTTP/2.
 */
export class FakeApns {
  readonly received = new Inbox<ApnsReceived>();
  readonly unregistered = new Set<string>();
  readonly badTokens = new Set<string>();
  readonly failures = new FailureScript<{ status: number; reason: string }>();
  /** Every request, also the refused ones: [token, status]. */
  readonly log: [string, number][] = [];
  readonly teamId = 'TEAM123456';
  readonly keyId = 'KEY1234567';
  readonly topic = 'org.magpie.app';
  /** The ES256 signing key (.p8) the server under test gets. */
  readonly privateKeyPem: string;
  private readonly publicKey: KeyObject;
  private server!: Http2Server | Http2SecureServer;
  private certDir: string | null = null;
  private readonly verified = new Map<string, { header: Record<string, unknown>; claims: Record<string, unknown> }>();
  private readonly sessions = new Set<import('node:http2').ServerHttp2Session>();
  url = '';
  ca: Buffer | undefined;
  /** PEM file of the throwaway certificate (TLS mode). */
  caFile: string | undefined;
  delayMs = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKey = publicKey;
  }

  async start(opts: { tls?: boolean } = {}): Promise<this> {
    const tls = opts.tls ?? haveOpenssl();
    if (tls) {
      this.certDir = mkdtempSync(join(tmpdir(), 'fake-apns-'));
      const key = join(this.certDir, 'key.pem');
      const cert = join(this.certDir, 'cert.pem');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
        { stdio: 'ignore' },
      );
      this.ca = readFileSync(cert);
      this.caFile = cert;
      this.server = createSecureServer({ key: readFileSync(key), cert: this.ca, settings: { maxConcurrentStreams: 1000 } });
    } else {
      this.server = createServer({ settings: { maxConcurrentStreams: 1000 } });
    }
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.server.on('session', (s) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const finish = () => this.answer(stream, headers, Buffer.concat(chunks));
      if (this.delayMs > 0) setTimeout(finish, this.delayMs);
      else finish();
    });
    stream.on('error', () => {});
  }

  private answer(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer): void {
    const path = String(headers[constants.HTTP2_HEADER_PATH] ?? '');
    const token = decodeURIComponent(path.replace(/^\/3\/device\//, ''));
    const reply = (status: number, reason?: string, extra: Record<string, unknown> = {}) => {
      this.log.push([token, status]);
      if (stream.destroyed) return;
      const apnsId = String(headers['apns-id'] ?? '00000000-0000-0000-0000-000000000000');
      stream.respond({ [constants.HTTP2_HEADER_STATUS]: status, 'apns-id': apnsId, ...(reason ? { 'content-type': 'application/json' } : {}) });
      stream.end(reason ? JSON.stringify({ reason, ...extra }) : undefined);
    };
    if (headers[constants.HTTP2_HEADER_METHOD] !== 'POST' || !path.startsWith('/3/device/')) return reply(404, 'BadPath');
    const auth = String(headers.authorization ?? '');
    if (!auth.startsWith('bearer ')) return reply(403, 'MissingProviderToken');
    try {
      // APNs validates a provider token once and trusts it while it is fresh; so do we.
      const jwt = auth.slice(7);
      const known = this.verified.get(jwt);
      const { header, claims } = known ?? verifyJwt(jwt, this.publicKey, 'ES256');
      if (!known) this.verified.set(jwt, { header, claims });
      if (header.kid !== this.keyId || claims.iss !== this.teamId) return reply(403, 'InvalidProviderToken');
      if (typeof claims.iat !== 'number' || Math.abs(Date.now() / 1000 - claims.iat) > 3600) return reply(403, 'ExpiredProviderToken');
    } catch {
      return reply(403, 'InvalidProviderToken');
    }
    if (headers['apns-topic'] !== this.topic) return reply(400, 'TopicDisallowed');
    if (!['alert', 'background', 'voip'].includes(String(headers['apns-push-type']))) return reply(400, 'InvalidPushType');
    const prio = String(headers['apns-priority'] ?? '10');
    if (!['5', '10', '1'].includes(prio)) return reply(400, 'BadPriority');
    const collapse = headers['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(String(collapse)) > 64) return reply(400, 'BadCollapseId');
    if (body.length > 4096) return reply(413, 'PayloadTooLarge');
    let payload: ApnsReceived['payload'];
    try {
      payload = JSON.parse(body.toString('utf8'));
      if (typeof payload.aps !== 'object') throw new Error('no aps');
    } catch {
      return reply(400, 'PayloadEmpty');
    }
    if (!/^[0-9a-f]{64,200}$/i.test(token) || this.badTokens.has(token)) return reply(400, 'BadDeviceToken');
    if (this.unregistered.has(token)) return reply(410, 'Unregistered', { timestamp: Date.now() });
    const fail = this.failures.take(token);
    if (fail) return reply(fail.status, fail.reason);
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) h[k] = String(v);
    reply(200);
    this.received.push({ token, headers: h, payload, at: Date.now() });
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sessions) s.destroy();
    await closed;
    if (this.certDir) rmSync(this.certDir, { recursive: true, force: true });
  }
}

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A random APNs-style device token (32 bytes hex). */
export function apnsToken(): string {
  return Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString('hex');
}
