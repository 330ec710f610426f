import { createServer, type Server } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FailureScript, Inbox, readBody } from './common.ts';

export interface WebhookReceived {
  body: Record<string, any>;
  at: number;
}

/**
 * The operator's relay for phone-maker channels, as Magpie's webhook adapter expects it:
 * checks `X-Magpie-Signature: sha256=HMAC(secret, body)`, answers 200 {id}, 410 for dead
 * vendor tokens, and scripted 503s with Retry-After.
 */
export class FakeWebhookRelay {
  readonly received = new Inbox<WebhookReceived>();
  readonly dead = new Set<string>();
  readonly failures = new FailureScript<{ status: number; retryAfter?: number }>();
  readonly secret = 'relay-secret-0123456789';
  badSignatures = 0;
  private server!: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer(async (req, res) => {
      const raw = await readBody(req);
      const want = Buffer.from(`sha256=${createHmac('sha256', this.secret).update(raw).digest('hex')}`);
      const got = Buffer.from(String(req.headers['x-magpie-signature'] ?? ''));
      const json = (status: number, o: unknown, h: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...h });
        res.end(JSON.stringify(o));
      };
      if (want.length !== got.length || !timingSafeEqual(want, got)) {
        this.badSignatures++;
        return json(401, { error: 'bad_signature' });
      }
      const body = JSON.parse(raw.toString()) as Record<string, any>;
      if (this.dead.has(body.token)) return json(410, { error: 'invalid_token' });
      const fail = this.failures.take(String(body.token));
      if (fail) return json(fail.status, { error: 'vendor_unavailable' }, fail.retryAfter !== undefined ? { 'retry-after': String(fail.retryAfter) } : {});
      this.received.push({ body, at: Date.now() });
      json(200, { id: `relay-${this.received.items.length}` });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/push`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
