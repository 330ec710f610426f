/**
 * Bus: node-to-node routing of live events to the devices of a user, wherever they are
 * connected. Implementations: in-process (memory-bus.ts, default, one node) and, for
 * clusters, NATS core pub/sub (nats-bus.ts).
 *
 * Guarantees: at-most-once, in publish order per user from one node. A lost event is
 * never a lost message: every message is durable in the Store before it is published,
 * and clients recover anything missed through sync (pong inboxSeq, gap pull).
 *
 * Routing is by interest: a node receives `deliver` and `kick` events of the users it
 * watches, `advance` events of the conversations it watches, and every `supers` event.
 * An event published on a node reaches that node's own handler exactly once (when it
 * watches the target). The in-process Bus has one node: it hands everything to it.
 */
export interface Bus {
  publish(event: BusEvent): void;
  /**
   * The `deliver` events of one message's fan-out, in order: the same as publishing each, by
   * contract (same guarantees, same local dispatch). Every event has the same `msgId`, `tp`
   * and `body`, its `inboxSeq`, and `frame` = msgFrame(inboxSeq, body) (delivery/msg-frame.ts).
   * A cluster Bus may carry them to the other nodes as one message (nats-bus.ts).
   */
  publishDeliveries(events: DeliverEvent[]): void;
  /** Register this node's handler for events addressed to users it may hold. */
  subscribe(handler: (event: BusEvent) => void): void;
  /**
   * This node holds a connection of `userId`: route its `deliver`/`kick` events here.
   * Reference-counted: every call is matched by one `unwatchUser`. Resolves once the
   * interest is in effect, i.e. events published anywhere after that reach this node.
   */
  watchUser(userId: string): Promise<void>;
  unwatchUser(userId: string): void;
  /** This node has followers of super group `conv`: route its `advance` events here. Reference-counted like watchUser. */
  watchConv(conv: string): Promise<void>;
  unwatchConv(conv: string): void;
  /**
   * `listener` runs when the Bus comes back after an outage (events published meanwhile may
   * be lost): the node then tells its clients to pull. Never fires on the in-process Bus.
   */
  onResume(listener: () => void): void;
  /**
   * Devices of `userIds` connected to OTHER nodes of the cluster (this node's own come from
   * its gateway). Answers within about `waitMs`; a node that does not answer in time counts
   * as holding none. Empty on the in-process Bus (one node).
   */
  remotePresence(userIds: string[]): Promise<Map<string, string[]>>;
  /** Answer other nodes' presence questions with this node's connected devices of the given users. */
  servePresence(local: (userIds: string[]) => Map<string, string[]>): void;
  /**
   * Ask every OTHER node of the cluster a question on `topic` (e.g. "your journal entries of
   * message X") and collect their answers, within about a second: a node that does not answer
   * in time is left out. Empty on the in-process Bus (one node: the caller answers itself).
   */
  askNodes(topic: string, question: unknown): Promise<unknown[]>;
  /** Answer other nodes' questions on `topic` (one answerer per topic; JSON-serializable answers). */
  answerNodes(topic: string, answer: (question: unknown) => unknown): void;
  /** Readiness: resolves when the Bus can carry events now (a round trip to the broker), rejects otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
  /** The cluster's nodes and requests to one of them; absent on the in-process Bus (one node). */
  readonly nodes?: NodeLink;
}

/**
 * Which nodes of the cluster are alive, and request/reply to one of them by id (the NATS Bus:
 * heartbeats on a subject per scope, requests to a subject per node). Used to route a normal
 * group's posts to one owner node (services/group-router.ts).
 */
export interface NodeLink {
  /** This node's id: unique per process. */
  readonly self: string;
  /**
   * Take part in `scope` (the nodes of one database: nodes of another scope on the same broker
   * are ignored): heartbeat every `heartbeatMs`; a node not heard from for 3 heartbeats, one
   * that said goodbye, or every other node while the broker is unreachable, counts as gone.
   */
  join(scope: string, heartbeatMs: number): void;
  /** The live nodes, this one included, sorted; `version` changes whenever the set does. */
  live(): { readonly nodes: readonly string[]; readonly version: number };
  /** Ask node `node` on `topic`: its handler's answer; rejects at once when no such node listens, or after `timeoutMs`. */
  request(node: string, topic: string, payload: string, timeoutMs: number): Promise<string>;
  /**
   * Answer requests on `topic` addressed to this node (one handler per topic). Call it before
   * `join`: the broker then registers the handler before any node hears this one's first
   * heartbeat (one connection's messages are handled in order), so nobody asks it too early.
   */
  serve(topic: string, handler: (payload: string) => Promise<string>): void;
  /** Leave (drain, stop): goodbye to the others, no more heartbeats, no new requests (requests being answered still are). */
  leave(): void;
  /**
   * Tell every node on the broker `payload` on `topic` (those that `hear` it) and resolve once
   * every live peer of this scope confirmed it, or after `timeoutMs`: with the live peers that
   * did not confirm (none when all did). Nodes this one does not know yet get it too.
   */
  tellAll?(topic: string, payload: string, timeoutMs: number): Promise<string[]>;
  /** Handle `tellAll` on `topic`: `handler` runs synchronously on arrival, and its return confirms. One handler per topic. */
  hear?(topic: string, handler: (payload: string) => void): void;
  /**
   * `listener` runs whenever this node may have missed a `tellAll`: the live nodes changed (one
   * joined or left), the broker connection was lost or is back, or this node left.
   */
  onChange?(listener: () => void): void;
  /**
   * This node takes part in a scope (join ran, leave did not), reaches the broker, and every live
   * peer's heartbeat says its release tells the others of push-device registrations (push/index.ts):
   * only then may a node remember users without a push device.
   */
  pushDevicesTold?(): boolean;
}

/** A `deliver` event (BusEvent). */
export type DeliverEvent = Extract<BusEvent, { type: 'deliver' }>;

export type BusEvent =
  /**
   * Write `frame` (serialized JSON) to every device of `userId`, except the connection
   * `exceptSession` (token hash). `inboxSeq` marks an inbox item (a `msg`), which the
   * receiving node tracks for ACK and retry. `devices` limits it to these device ids.
   * `msgId` names the message of a `msg` frame (for its trace); `tp` is the W3C traceparent of
   * its send span, only while spans are exported (tracing/). `body`: the message JSON of a
   * `msg` frame (the frame is delivery/msg-frame.ts msgFrame(inboxSeq, body)), one string
   * shared by all its recipients, which the retry queue keeps instead of each recipient's
   * frame; on this node only (not sent to other nodes: the frame carries it). `via`: the node
   * that published this `msg` in a batched fan-out (NatsBus.publishDeliveries), set by the
   * receiving node; the device's ACK is written there (AckService.route).
   */
  | { type: 'deliver'; userId: string; frame: string; exceptSession?: string; inboxSeq?: number; devices?: string[]; msgId?: string; tp?: string; body?: string; via?: string }
  /** Write `frame` to every connection subscribed to super group `conv` (its online members). */
  | {
      type: 'advance';
      conv: string;
      frame: string;
      exceptSession?: string;
      /** The message's seq and member epoch (AppendOutcome.epoch): a node holds it until it knows the memberships up to `epoch`. */
      seq?: number;
      epoch?: number;
    }
  /**
   * Super-group subscriptions changed: these users joined/left `conv` (or it became a super
   * group) with the notice at seq `epoch`. Reaches every node.
   */
  | { type: 'supers'; conv: string; add: string[]; remove: string[]; epoch?: number }
  /** Close these sessions' connections with a kicked/revoked close. `device`: the device id of the login that displaced them (new_login). */
  | { type: 'kick'; userId: string; tokenHashes: string[]; reason: 'new_login' | 'logout' | 'logout_all' | 'admin'; device?: string }
  /** A user's cluster-wide presence changed (debounced by the node that saw it; receipts/presence.ts). Reaches every node. */
  | { type: 'presence'; userId: string; online: boolean; lastSeen: number | null }
  /** A service account's audience-all notification (src/notifications/): each node writes `frame` to its connected users who did not unsubscribe from `service`. Reaches every node. */
  | { type: 'broadcast'; service: string; frame: string }
  /**
   * Push jobs of `lane` are due now beyond what the publishing node's dispatcher takes at once
   * (it claimed a full batch): every node's dispatcher claims from the shared queue now instead
   * of at its next idle poll (push/dispatcher.ts). A hint: the jobs are durable in the queue.
   * Reaches every node.
   */
  | { type: 'push'; lane: 'live' | 'bulk' };
