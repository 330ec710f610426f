import net from 'node:net';

/**
 * A minimal keep-alive HTTP/1.1 client on one TCP connection, one request at a time: the
 * request is a pre-built string, the answer is read by its Content-Length. For load
 * generators whose own CPU would otherwise be part of what they measure: node:http's client
 * (an Agent, a ClientRequest, an IncomingMessage, header objects and stream machinery per
 * request) costs about as much CPU per request as the server spends answering a red-packet
 * open, and both share the machine's cores. This is a socket write and a Buffer scan per request.
 *
 * Only what the benches need: answers with Content-Length (fastify sends it for JSON), no
 * chunked bodies, no redirects, no pipelining. A connection the server closed is opened
 * again for the next request.
 */
export class RawHttpConnection {
  private socket: net.Socket | null = null;
  private buf: Buffer | null = null;
  private pending: { resolve: (r: { status: number; body: string }) => void; reject: (e: Error) => void } | null = null;
  private connecting: Promise<void> | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** Open the connection now (before the timed phase). */
  connect(): Promise<void> {
    if (this.socket && !this.socket.destroyed) return this.connecting ?? Promise.resolve();
    const s = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = s;
    this.buf = null;
    this.connecting = new Promise<void>((resolve, reject) => {
      s.once('connect', () => {
        this.connecting = null;
        resolve();
      });
      s.once('error', reject);
    });
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', (err) => this.fail(err));
    s.on('close', () => {
      if (this.socket === s) this.socket = null;
      this.fail(new Error('connection closed by the server'));
    });
    return this.connecting;
  }

  /** Send one request (`head` is the whole request: request line, headers, blank line, body). */
  async request(head: string): Promise<{ status: number; body: string }> {
    if (this.pending) throw new Error('RawHttpConnection: one request at a time');
    if (!this.socket || this.socket.destroyed) await this.connect();
    else if (this.connecting) await this.connecting;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket!.write(head);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = null;
    this.buf = null;
    p?.reject(err);
  }

  private onData(d: Buffer): void {
    const buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      this.buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!m) {
      this.fail(new Error(`RawHttpConnection: answer without Content-Length: ${head.slice(0, 200)}`));
      this.close();
      return;
    }
    const total = end + 4 + Number(m[1]);
    if (buf.length < total) {
      this.buf = buf;
      return;
    }
    this.buf = buf.length > total ? buf.subarray(total) : null;
    const status = Number(head.slice(9, 12));
    const body = buf.toString('utf8', end + 4, total);
    const p = this.pending;
    this.pending = null;
    p?.resolve({ status, body });
    if (/\r\nconnection:\s*close/i.test(head)) this.close();
  }
}
