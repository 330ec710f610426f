/**
 * Bus: node-to-node routing of live events to the devices of a user, wherever they are
 * connected. Implementations: in-process (default, one node) and, for clusters, a broker.
 *
 * Guarantees: at-most-once, in publish order per user from one node. A lost event is
 * never a lost message: every message is durable in the Store before it is published,
 * and clients recover anything missed through sync (pong inboxSeq, gap pull).
 */
export interface Bus {
  publish(event: BusEvent): void;
  /** Register this node's handler for events addressed to users it may hold. */
  subscribe(handler: (event: BusEvent) => void): void;
  close(): Promise<void>;
}

export type BusEvent =
  /**
   * Write `frame` (serialized JSON) to every device of `userId`, except the connection
   * `exceptSession` (token hash). `inboxSeq` marks an inbox item (a `msg`), which the
   * receiving node tracks for ACK and retry. `devices` limits it to these device ids.
   */
  | { type: 'deliver'; userId: string; frame: string; exceptSession?: string; inboxSeq?: number; devices?: string[] }
  /** Write `frame` to every connection subscribed to super group `conv` (its online members). */
  | { type: 'advance'; conv: string; frame: string; exceptSession?: string }
  /** Super-group subscriptions changed: these users joined/left `conv` (or it became a super group). */
  | { type: 'supers'; conv: string; add: string[]; remove: string[] }
  /** Close these sessions' connections with a kicked/revoked close. */
  | { type: 'kick'; userId: string; tokenHashes: string[]; reason: 'new_login' | 'logout' | 'logout_all' | 'admin' };
