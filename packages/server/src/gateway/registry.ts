import type { Connection } from './connection.ts';

/** Authenticated connections of this node, by user. */
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Set<Connection>>();

  /** False when `conn` was already registered. */
  add(userId: string, conn: Connection): boolean {
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    if (set.has(conn)) return false;
    set.add(conn);
    return true;
  }

  /** False when `conn` was not registered. */
  remove(userId: string, conn: Connection): boolean {
    const set = this.byUser.get(userId);
    if (!set?.delete(conn)) return false;
    if (set.size === 0) this.byUser.delete(userId);
    return true;
  }

  /** Connections of `userId` on this node. */
  count(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  of(userId: string): Iterable<Connection> {
    return this.byUser.get(userId) ?? [];
  }

  *all(): Iterable<Connection> {
    for (const set of this.byUser.values()) yield* set;
  }

  get users(): number {
    return this.byUser.size;
  }
}
