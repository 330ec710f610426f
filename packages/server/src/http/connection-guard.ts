import type { Server } from 'node:net';
import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  /** Open connections per client address; 0 = no cap. */
  maxPerIp: number;
  /** Open connections of the server; 0 = no cap. */
  maxConnections: number;
}

/**
 * Caps open TCP connections at accept — before a byte is read, so sockets that never send
 * a request count too. Per address (IPv6 clients by their /64, which one host usually
 * holds whole) and for the whole server (Node's `maxConnections`: it closes extra sockets
 * on accept). A refused socket is destroyed without an answer.
 */
export class ConnectionGuard {
  private readonly perIp = new Map<string, number>();

  constructor(
    server: Server,
    private readonly opts: ConnectionGuardOptions,
    private readonly onRefused: (reason: 'ip_cap' | 'server_cap') => void,
  ) {
    if (opts.maxConnections > 0) {
      server.maxConnections = opts.maxConnections;
      server.on('drop', () => onRefused('server_cap'));
    }
    // Without a per-address cap there is nothing to count per socket (no listener, no lookup).
    if (opts.maxPerIp > 0) server.on('connection', (socket: Socket) => this.accept(socket));
  }

  /** Open connections from the address group of `ip` (counted only while there is a per-address cap). */
  count(ip: string): number {
    return this.perIp.get(addressGroup(ip)) ?? 0;
  }

  private accept(socket: Socket): void {
    const key = addressGroup(socket.remoteAddress ?? '');
    const n = (this.perIp.get(key) ?? 0) + 1;
    if (n > this.opts.maxPerIp) {
      this.onRefused('ip_cap');
      socket.destroy();
      return;
    }
    this.perIp.set(key, n);
    socket.once('close', () => {
      const left = (this.perIp.get(key) ?? 1) - 1;
      if (left <= 0) this.perIp.delete(key);
      else this.perIp.set(key, left);
    });
  }
}

/** IPv4 (also IPv4-mapped IPv6) as is; IPv6 by its /64 prefix. */
export function addressGroup(ip: string): string {
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
