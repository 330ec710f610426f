import type { Connection } from './connection.ts';

/** Authenticated connections of this node, by user. */
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Set<Connection>>();

  add(userId: string, conn: Connection): void {
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(conn);
  }

  remove(userId: string, conn: Connection): void {
    const set = this.byUser.get(userId);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.byUser.delete(userId);
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
