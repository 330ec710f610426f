import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../src/webhooks/signature.ts';

export interface Received {
  event: string;
  signatureOk: boolean;
  payload: any;
  raw: string;
}

/**
 * A real local HTTP server standing in for an operator's system: it records every webhook
 * request (checking its signature) and answers with what `respond` decides.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  respond: (r: Received) => Promise<{ status: number; json?: unknown }> | { status: number; json?: unknown } = () => ({ status: 200, json: { action: 'allow' } });
  private server!: Server;
  url = '';
  private waiters: (() => void)[] = [];

  constructor(readonly secret: string) {}

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    const r: Received = { event: String(req.headers['magpie-event']), signatureOk: verifySignature(this.secret, raw, String(req.headers['magpie-signature'] ?? ''), Date.now()), payload: JSON.parse(raw), raw };
    this.received.push(r);
    for (const w of this.waiters.splice(0)) w();
    try {
      const out = await this.respond(r);
      res.writeHead(out.status, { 'content-type': 'application/json' });
      res.end(out.json === undefined ? '' : JSON.stringify(out.json));
    } catch {
      res.destroy();
    }
  }

  /** Wait until `pred` holds over what was received. */
  async until(pred: (rs: Received[]) => boolean, timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.received)) {
      if (Date.now() > end) throw new Error(`webhook receiver: condition not met in ${timeoutMs} ms; got ${this.received.length} requests: ${this.received.slice(-3).map((r) => r.raw.slice(0, 200)).join(' | ')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
