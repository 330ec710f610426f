import type { Connection } from './connection.ts';

const NONE: readonly Connection[] = [];

/**
 * Authenticated connections of this node, by user. Each user's connections are an array
 * replaced on every change (copy on write): a delivery walks it without an iterator object,
 * and a connection closed during the walk (a slow consumer) cannot disturb it.
 */
export class ConnectionRegistry {
  private readonly byUser = new Map<string, readonly Connection[]>();

  /** False when `conn` was already registered. */
  add(userId: string, conn: Connection): boolean {
    const list = this.byUser.get(userId);
    if (!list) {
      this.byUser.set(userId, [conn]);
      return true;
    }
    if (list.includes(conn)) return false;
    this.byUser.set(userId, [...list, conn]);
    return true;
  }

  /** False when `conn` was not registered. */
  remove(userId: string, conn: Connection): boolean {
    const list = this.byUser.get(userId);
    if (!list?.includes(conn)) return false;
    if (list.length === 1) this.byUser.delete(userId);
    else this.byUser.set(userId, list.filter((c) => c !== conn));
    return true;
  }

  /** Connections of `userId` on this node. */
  count(userId: string): number {
    return this.byUser.get(userId)?.length ?? 0;
  }

  /** Connections of `userId` on this node (a snapshot: later changes replace the array, never change it). */
  of(userId: string): readonly Connection[] {
    return this.byUser.get(userId) ?? NONE;
  }

  *all(): Iterable<Connection> {
    for (const list of this.byUser.values()) yield* list;
  }

  get users(): number {
    return this.byUser.size;
  }
}
