import type { Connection } from './connection.ts';

/** Told when a conversation gains its first follower on this node and loses its last (the Bus watches it meanwhile). */
export interface ConvInterest {
  /** Resolves once the conversation's events reach this node. */
  gained(conv: string): Promise<void> | void;
  lost(conv: string): void;
}

/**
 * Which connections of this node follow which super groups. Built from the store once per
 * connection (at hello) and kept up to date by membership events, so a super-group message
 * reaches its online members without reading the member list.
 */
export class SuperGroupIndex {
  private readonly byConv = new Map<string, Set<Connection>>();
  private readonly byConn = new Map<Connection, Set<string>>();
  /** Per followed conversation: resolves once the Bus routes its events here. */
  private readonly routed = new Map<string, Promise<void>>();

  constructor(private readonly interest: ConvInterest = { gained() {}, lost() {} }) {}

  /** Follow `conv` on `conn`; resolves once the conversation's events reach this node (at once when it already had followers). */
  add(conv: string, conn: Connection): Promise<void> {
    let set = this.byConv.get(conv);
    if (!set) {
      this.byConv.set(conv, (set = new Set()));
      this.routed.set(conv, Promise.resolve(this.interest.gained(conv)).catch(() => undefined));
    }
    set.add(conn);
    let convs = this.byConn.get(conn);
    if (!convs) this.byConn.set(conn, (convs = new Set()));
    convs.add(conv);
    return this.routed.get(conv) ?? Promise.resolve();
  }

  /** The conversations `conn` follows. */
  of(conn: Connection): ReadonlySet<string> {
    return this.byConn.get(conn) ?? new Set();
  }

  remove(conv: string, conn: Connection): void {
    const set = this.byConv.get(conv);
    set?.delete(conn);
    if (set && set.size === 0) this.lose(conv);
    this.byConn.get(conn)?.delete(conv);
  }

  /** Forget a closed connection. */
  drop(conn: Connection): void {
    for (const conv of this.byConn.get(conn) ?? []) {
      const set = this.byConv.get(conv);
      set?.delete(conn);
      if (set && set.size === 0) this.lose(conv);
    }
    this.byConn.delete(conn);
  }

  private lose(conv: string): void {
    this.byConv.delete(conv);
    this.routed.delete(conv);
    this.interest.lost(conv);
  }

  followers(conv: string): Iterable<Connection> {
    return this.byConv.get(conv) ?? [];
  }
}
