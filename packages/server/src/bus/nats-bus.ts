import { randomUUID } from 'node:crypto';
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import type { Bus, BusEvent, DeliverEvent, NodeLink } from './bus.ts';
import { msgFrame } from '../delivery/msg-frame.ts';

export interface NatsBusOptions {
  /** NATS server URL(s), e.g. nats://127.0.0.1:4222. */
  servers: string | string[];
  /** First subject token; every node of one cluster uses the same. Default 'magpie'. */
  prefix?: string;
  /** Connection name shown by the NATS server (monitoring). */
  name?: string;
  log?: Logger;
  /** How long after a `supers` join the conversation's advances go to every node (see publish). Default 2000. */
  transitionMs?: number;
  /** Longest wait for the server to confirm a new subscription before watch* resolves anyway. Default 2000. */
  confirmTimeoutMs?: number;
  /** Presence questions: how long to wait for more nodes after the last answer, and at most. Defaults 100 and 1000 ms (a late answer only costs an unneeded push). */
  presenceStallMs?: number;
  presenceMaxWaitMs?: number;
}

interface Interest {
  count: number;
  sub: Subscription;
  /** Resolves once the server has processed the SUB. */
  ready: Promise<void>;
}

/**
 * The cluster Bus over NATS core pub/sub. Live routing is at-most-once by contract (the
 * Store is the truth; clients recover losses by sync), so JetStream's persistence and acks
 * would only add latency and disk writes: plain subjects are enough.
 *
 * Routing by interest, not broadcast:
 *   <prefix>.u.<user>   `deliver` and `kick`; subscribed while this node holds a connection of the user
 *   <prefix>.c.<conv>   super-group `advance`; subscribed while this node has followers of the conversation
 *   <prefix>.all        `supers` membership changes and audience-all notifications (every node), advances during a transition (below),
 *                       and big fan-outs (publishDeliveries: one message's deliveries to many users as one event)
 *   <prefix>.presence   request/reply: "which of these users' devices do you hold?" (every node answers)
 *   <prefix>.ask.<topic> request/reply: askNodes/answerNodes (e.g. trace journals of a message)
 *   <prefix>.hb.<scope> node heartbeats of one scope (NodeLink: the nodes of one database)
 *   <prefix>.n.<node>.<topic> request/reply to one node (NodeLink.request; e.g. a forwarded group post)
 *   <prefix>.tell.<topic> request/reply to every node, each confirming with its id (NodeLink.tellAll; a push-device registration)
 * Ids are base64url-encoded into one subject token: they may contain ':' and NATS tokens
 * must not contain '.', '*', '>' or whitespace.
 *
 * Own events: the connection is opened with `noEcho`, so the server never returns this
 * node's publications to it; `publish` hands them to the local handlers itself (when this
 * node watches the target), synchronously, in publish order — exactly once.
 *
 * Order: one connection per node, and NATS keeps the order of one publisher's messages,
 * so events for a user from one node arrive in publish order.
 *
 * Reconnects: the client reconnects forever and re-sends its subscriptions itself; events
 * published while disconnected go out from its reconnect buffer or are lost (at-most-once).
 * Status changes are logged.
 */
export class NatsBus implements Bus {
  private readonly handlers: ((event: BusEvent) => void)[] = [];
  private readonly users = new Map<string, Interest>();
  private readonly convs = new Map<string, Interest>();
  /** Conversations whose followers changed recently: conv → until (ms). */
  private readonly transitions = new Map<string, number>();
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly transitionMs: number;
  private readonly confirmTimeoutMs: number;
  private readonly presenceStallMs: number;
  /** Tells this node's own presence questions apart from other nodes'. */
  private readonly instanceId = randomUUID();
  private readonly presenceMaxWaitMs: number;
  private confirmWaiters: (() => void)[] | null = null;
  private closing = false;
  private readonly resumeListeners: (() => void)[] = [];
  private presenceSub: Subscription | null = null;
  private readonly answerSubs = new Map<string, Subscription>();
  /** Cluster membership and node requests (NodeLink). */
  readonly nodes: NodeLink;
  private readonly nodeLink: NatsNodeLink;

  private constructor(
    private readonly nc: NatsConnection,
    opts: NatsBusOptions,
  ) {
    this.prefix = opts.prefix ?? 'magpie';
    this.log = opts.log ?? pino({ enabled: false });
    this.transitionMs = opts.transitionMs ?? 2000;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 2000;
    this.presenceStallMs = opts.presenceStallMs ?? 100;
    this.presenceMaxWaitMs = opts.presenceMaxWaitMs ?? 1000;
    nc.subscribe(`${this.prefix}.all`, { callback: (err, msg) => this.onMessage(err, msg) });
    this.nodes = this.nodeLink = new NatsNodeLink(nc, this.prefix, this.instanceId, this.log);
    void this.watchStatus();
  }

  /**
   * Connect to NATS. Fails with a one-line BusUnavailableError when no server answers: a node
   * without its bus must not start (main prints the line and exits non-zero).
   */
  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: opts.servers,
        name: opts.name ?? 'magpie',
        noEcho: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        // No stack captured per request and timed subscription (a group post's forward, its
        // members' ACK forwards, presence questions): the node logs these errors' messages only.
        noAsyncTraces: true,
      });
    } catch (err) {
      const where = Array.isArray(opts.servers) ? opts.servers.join(',') : opts.servers;
      throw new BusUnavailableError(`NATS unreachable at ${where} (${(err as Error).message}); start nats-server or fix MAGPIE_NATS`);
    }
    const bus = new NatsBus(nc, opts);
    // The subscription to `<prefix>.all` is in effect once this resolves (a PING/PONG round
    // trip): a `supers` event another node publishes after it reaches this node. Without it the
    // server could take a publication from another connection before this one's SUB.
    try {
      await nc.flush();
    } catch (err) {
      bus.log.warn({ err: (err as Error).message }, 'nats flush after connect failed');
    }
    return bus;
  }

  onResume(listener: () => void): void {
    this.resumeListeners.push(listener);
  }

  async remotePresence(userIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (userIds.length === 0 || this.closing) return out;
    try {
      // The question names its asker, which does not answer itself (it knows its own devices):
      // otherwise its own instant answer would start the stall timer and a busy peer's answer
      // would be missed.
      const replies = await this.nc.requestMany(`${this.prefix}.presence`, JSON.stringify({ from: this.instanceId, users: userIds }), {
        strategy: 'stall',
        stall: this.presenceStallMs,
        maxWait: this.presenceMaxWaitMs,
      });
      for await (const msg of replies) {
        // An empty reply is the server's "no responders" status: no other node is up.
        if (msg.data.length === 0) break;
        const held = JSON.parse(msg.string()) as Record<string, string[]>;
        for (const [u, devices] of Object.entries(held)) out.set(u, [...(out.get(u) ?? []), ...devices]);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'presence question unanswered');
    }
    return out;
  }

  servePresence(local: (userIds: string[]) => Map<string, string[]>): void {
    this.presenceSub?.unsubscribe();
    this.presenceSub = this.nc.subscribe(`${this.prefix}.presence`, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        try {
          const q = JSON.parse(msg.string()) as unknown;
          // `{from, users}`; a bare array is the question of an older node.
          const asked = Array.isArray(q) ? q : (q as { from?: unknown; users?: unknown } | null)?.users;
          if ((q as { from?: unknown } | null)?.from === this.instanceId || !Array.isArray(asked)) return;
          msg.respond(JSON.stringify(Object.fromEntries(local(asked.filter((x): x is string => typeof x === 'string')))));
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'bad presence question dropped');
        }
      },
    });
  }

  async askNodes(topic: string, question: unknown): Promise<unknown[]> {
    const out: unknown[] = [];
    if (this.closing) return out;
    try {
      const replies = await this.nc.requestMany(`${this.prefix}.ask.${token(topic)}`, JSON.stringify({ from: this.instanceId, q: question }), {
        strategy: 'stall',
        stall: this.presenceStallMs,
        maxWait: this.presenceMaxWaitMs,
      });
      for await (const msg of replies) {
        // An empty reply is the server's "no responders" status: no other node answers this topic.
        if (msg.data.length === 0) break;
        try {
          out.push(JSON.parse(msg.string()) as unknown);
        } catch {
          this.log.warn({ topic }, 'bad answer to a node question dropped');
        }
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message, topic }, 'node question unanswered');
    }
    return out;
  }

  answerNodes(topic: string, answer: (question: unknown) => unknown): void {
    this.answerSubs.get(topic)?.unsubscribe();
    this.answerSubs.set(
      topic,
      this.nc.subscribe(`${this.prefix}.ask.${token(topic)}`, {
        callback: (err, msg) => {
          if (err || !msg.reply) return;
          let asked: { from?: unknown; q?: unknown } | null;
          try {
            asked = JSON.parse(msg.string()) as { from?: unknown; q?: unknown } | null;
          } catch {
            this.log.warn({ topic }, 'bad node question dropped');
            return;
          }
          // The asker answers itself locally; its own (instant) answer here would end the stall wait early.
          if (asked?.from === this.instanceId) return;
          Promise.resolve()
            .then(() => answer(asked?.q))
            .then((a) => msg.respond(JSON.stringify(a ?? null)))
            .catch((e: unknown) => this.log.warn({ err: (e as Error).message, topic }, 'node question failed'));
        },
      }),
    );
  }

  publish(event: BusEvent): void {
    if (this.closing) return;
    if (event.type === 'supers' && event.add.length > 0) this.markTransition(event.conv);
    try {
      this.nc.publish(this.subjectOf(event), encode(event));
    } catch (err) {
      this.log.warn({ err: (err as Error).message, type: event.type }, 'bus publish failed');
    }
    this.dispatch(event);
  }

  /**
   * One message's deliveries. A fan-out to at least `BATCH_MIN` users and to more than twice
   * the cluster's live nodes (NodeLink; only once this node joined its scope, so it knows how
   * many there are) goes as ONE event on `<prefix>.all`: every node gets it once and hands the
   * deliveries of the users it watches to its handlers, instead of one event per user
   * (a 90-member group on three nodes: 1 publication instead of 60, and 1 event in instead of
   * 30 on each other node). Smaller ones go per user, as `publish`. Order per user from this
   * node holds either way: one connection, and NATS keeps one publisher's order across
   * subjects (as the `supers`/advance transition above relies on).
   */
  publishDeliveries(events: DeliverEvent[]): void {
    if (this.closing) return;
    const first = events[0];
    const nodes = this.nodeLink.batches() ? this.nodeLink.live().nodes.length : 0;
    if (!first || first.body === undefined || nodes === 0 || events.length < Math.max(BATCH_MIN, 2 * nodes)) {
      for (const e of events) this.publish(e);
      return;
    }
    try {
      this.nc.publish(`${this.prefix}.all`, encodeMany(events, first.body, this.nodeLink.self));
    } catch (err) {
      this.log.warn({ err: (err as Error).message, type: 'deliver' }, 'bus publish failed');
    }
    // On the socket before this node's own deliveries (and whatever else the caller's task
    // does after them): the other nodes' members start as early as this node's.
    sendNow(this.nc);
    for (const e of events) this.dispatch(e);
  }

  subscribe(handler: (event: BusEvent) => void): void {
    this.handlers.push(handler);
  }

  watchUser(userId: string): Promise<void> {
    return this.watch(this.users, `${this.prefix}.u.${token(userId)}`, userId);
  }

  unwatchUser(userId: string): void {
    this.unwatch(this.users, userId);
  }

  watchConv(conv: string): Promise<void> {
    return this.watch(this.convs, `${this.prefix}.c.${token(conv)}`, conv);
  }

  unwatchConv(conv: string): void {
    this.unwatch(this.convs, conv);
  }

  /** Drain: pending publications are flushed, subscriptions end, the connection closes. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.nodeLink.leave();
    try {
      await this.nc.drain();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'nats drain failed');
    }
    this.handlers.length = 0;
    this.users.clear();
    this.convs.clear();
  }

  /**
   * A node that gains followers through a `supers` event subscribes to the conversation
   * only when that event arrives, so an advance published right after it (the next message
   * of a group that just became super) could pass before the new subscription is in effect.
   * Every node sees every `supers` event, so for a short while afterwards advances of that
   * conversation take the broadcast subject, behind the `supers` event from the same node.
   */
  private subjectOf(event: BusEvent): string {
    switch (event.type) {
      case 'deliver':
      case 'kick':
        return `${this.prefix}.u.${token(event.userId)}`;
      case 'advance':
        return (this.transitions.get(event.conv) ?? 0) > Date.now() ? `${this.prefix}.all` : `${this.prefix}.c.${token(event.conv)}`;
      case 'supers':
      case 'presence':
      case 'broadcast':
      case 'push':
        return `${this.prefix}.all`;
    }
  }

  private markTransition(conv: string): void {
    const now = Date.now();
    if (this.transitions.size > 1024) for (const [c, until] of this.transitions) if (until <= now) this.transitions.delete(c);
    this.transitions.set(conv, now + this.transitionMs);
  }

  private watch(map: Map<string, Interest>, subject: string, key: string): Promise<void> {
    const have = map.get(key);
    if (have) {
      have.count++;
      return have.ready;
    }
    if (this.closing) return Promise.resolve();
    const sub = this.nc.subscribe(subject, { callback: (err, msg) => this.onMessage(err, msg) });
    const entry: Interest = { count: 1, sub, ready: this.confirm() };
    map.set(key, entry);
    return entry.ready;
  }

  private unwatch(map: Map<string, Interest>, key: string): void {
    const have = map.get(key);
    if (!have || --have.count > 0) return;
    map.delete(key);
    if (!this.closing) have.sub.unsubscribe();
  }

  /**
   * Resolve once the server has processed everything sent so far (a PING/PONG round trip).
   * Subscriptions made in one tick share one round trip; a server that does not answer in
   * time only costs at-most-once delivery meanwhile, never a stuck caller.
   */
  private confirm(): Promise<void> {
    return new Promise((resolve) => {
      if (this.confirmWaiters) {
        this.confirmWaiters.push(resolve);
        return;
      }
      const waiters = (this.confirmWaiters = [resolve]);
      queueMicrotask(() => {
        this.confirmWaiters = null;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((r) => (timer = setTimeout(r, this.confirmTimeoutMs)));
        Promise.race([this.nc.flush(), timeout])
          .catch((err: Error) => this.log.debug({ err: err.message }, 'nats flush failed'))
          .finally(() => {
            clearTimeout(timer);
            for (const w of waiters) w();
          });
      });
    });
  }

  private onMessage(err: Error | null, msg: Msg): void {
    if (err) {
      this.log.warn({ err: err.message }, 'nats subscription error');
      return;
    }
    let event: BusEvent;
    try {
      const text = msg.string();
      if (text.startsWith(MANY)) {
        this.onMany(text);
        return;
      }
      event = decode(text);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, subject: msg.subject }, 'bad bus message dropped');
      return;
    }
    if (event.type === 'supers' && event.add.length > 0) this.markTransition(event.conv);
    this.dispatch(event);
  }

  /** A batched fan-out (publishDeliveries): the deliveries of the users this node watches, in order. */
  private onMany(text: string): void {
    const nl = text.indexOf('\n');
    const head = JSON.parse(text.slice(MANY.length, nl)) as ManyHead;
    const body = text.slice(nl + 1);
    const to = head.to;
    for (let i = 0; i < to.length; i += 3) {
      const userId = to[i] as string;
      if (!this.users.has(userId)) continue;
      const inboxSeq = to[i + 1] as number;
      const ev: DeliverEvent = { type: 'deliver', userId, frame: msgFrame(inboxSeq, body), inboxSeq, msgId: head.msgId, body };
      const except = to[i + 2];
      if (typeof except === 'string') ev.exceptSession = except;
      if (head.tp !== undefined) ev.tp = head.tp;
      if (head.n !== undefined) ev.via = head.n;
      this.dispatch(ev);
    }
  }

  /** Hand an event to the local handlers when this node watches its target. */
  private dispatch(event: BusEvent): void {
    const wanted = event.type === 'supers' || event.type === 'presence' || event.type === 'broadcast' || event.type === 'push' || (event.type === 'advance' ? this.convs.has(event.conv) : this.users.has(event.userId));
    if (!wanted) return;
    for (const h of this.handlers) {
      try {
        h(event);
      } catch (err) {
        this.log.error({ err: (err as Error).message, type: event.type }, 'bus handler failed');
      }
    }
  }

  /** Once the restored subscriptions are in effect, tell the listeners (events may have been lost meanwhile). */
  private async resumed(): Promise<void> {
    await this.confirm();
    if (this.closing) return;
    for (const l of this.resumeListeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'bus resume listener failed');
      }
    }
  }

  /** A PING/PONG round trip to the NATS server; rejects while disconnected or closed. */
  async check(): Promise<void> {
    if (this.closing || this.nc.isClosed()) throw new Error('the NATS connection is closed');
    await this.nc.flush();
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'ping':
        case 'reconnecting':
          this.log.debug({ status: s.type }, 'nats status');
          break;
        case 'disconnect':
          this.nodeLink.disconnected();
          this.log.warn({ server: s.server }, 'nats disconnected; reconnecting (live events meanwhile are lost, clients catch up by sync)');
          break;
        case 'reconnect':
          this.log.info({ server: s.server }, 'nats reconnected; subscriptions restored, clients told to pull');
          this.nodeLink.reconnected();
          void this.resumed();
          break;
        case 'error':
          this.log.error({ err: s.error.message }, 'nats error');
          break;
        case 'slowConsumer':
          this.log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'nats slow consumer');
          break;
        default:
          this.log.info({ status: s.type }, 'nats status');
      }
    }
  }
}

/**
 * NodeLink over NATS. Heartbeats: every node of a scope publishes `{id}` on
 * `<prefix>.hb.<scope>` every `heartbeatMs`, and at once when it hears a node it did not know
 * (so a starting node learns the others within a round trip, and they learn it); `{id, bye}`
 * when it closes. A node unheard for 3 heartbeats is gone. While the broker is unreachable this
 * node is alone (it cannot reach the others anyway). Requests go to `<prefix>.n.<node>.<topic>`:
 * NATS answers "no responders" at once for a node that is gone (its subscription ended with its
 * connection), so only a node that dies while holding a request costs the caller its timeout.
 */
class NatsNodeLink implements NodeLink {
  private readonly peers = new Map<string, number>();
  /** Peers whose heartbeats do not say `many` (a release before batched fan-outs: they drop them, see NatsBus.publishDeliveries). */
  private readonly legacy = new Set<string>();
  /** Peers whose heartbeats do not say `pd` (a release that does not tell the others of push-device registrations: pushDevicesTold). */
  private readonly untold = new Set<string>();
  private readonly changeListeners: (() => void)[] = [];
  private readonly hearing = new Map<string, Subscription>();
  private view: { nodes: readonly string[]; version: number };
  private subject = '';
  private heartbeatMs = 1000;
  private timer: NodeJS.Timeout | undefined;
  private hbSub: Subscription | null = null;
  private lastEager = 0;
  private connected = true;
  private left = false;
  private readonly serving = new Map<string, Subscription>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    readonly self: string,
    private readonly log: Logger,
  ) {
    this.view = { nodes: [self], version: 0 };
  }

  join(scope: string, heartbeatMs: number): void {
    if (this.hbSub || this.left) return;
    this.heartbeatMs = heartbeatMs;
    this.subject = `${this.prefix}.hb.${token(scope)}`;
    this.hbSub = this.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err) return;
        let hb: { id?: unknown; bye?: unknown; many?: unknown; pd?: unknown };
        try {
          hb = JSON.parse(msg.string()) as { id?: unknown; bye?: unknown; many?: unknown; pd?: unknown };
        } catch {
          return;
        }
        if (typeof hb.id !== 'string' || hb.id === this.self) return;
        if (hb.bye === true) {
          this.legacy.delete(hb.id);
          this.untold.delete(hb.id);
          if (this.peers.delete(hb.id)) this.changed();
          return;
        }
        const known = this.peers.has(hb.id);
        this.peers.set(hb.id, Date.now());
        if (hb.many === 1) this.legacy.delete(hb.id);
        else this.legacy.add(hb.id);
        if (hb.pd === 1) this.untold.delete(hb.id);
        else this.untold.add(hb.id);
        if (!known) {
          this.changed();
          // A newcomer: tell it about this node now rather than at the next beat.
          const now = Date.now();
          if (now - this.lastEager > 100) {
            this.lastEager = now;
            this.beat();
          }
        }
      },
    });
    this.beat();
    this.timer = setInterval(() => this.tick(), heartbeatMs);
    this.timer.unref();
  }

  live(): { readonly nodes: readonly string[]; readonly version: number } {
    return this.view;
  }

  /**
   * Big fan-outs may go as one event (NatsBus.publishDeliveries): this node takes part in a
   * scope (join ran, leave did not), so `live()` is the cluster's view, and every live peer's
   * heartbeat says it reads them (during a rolling upgrade from an earlier release, not).
   */
  batches(): boolean {
    return this.hbSub !== null && !this.left && this.legacy.size === 0;
  }

  pushDevicesTold(): boolean {
    return this.hbSub !== null && !this.left && this.connected && this.untold.size === 0;
  }

  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  async tellAll(topic: string, payload: string, timeoutMs: number): Promise<string[]> {
    // Peers of a release that does not hear tells would never confirm.
    const waiting = new Set(this.view.nodes.filter((n) => n !== this.self && !this.untold.has(n)));
    const subject = `${this.prefix}.tell.${token(topic)}`;
    const data = JSON.stringify({ from: this.self, p: payload });
    if (waiting.size === 0) {
      // Nobody to wait for; nodes this one does not know yet still hear it.
      try {
        this.nc.publish(subject, data);
      } catch (err) {
        this.log.debug({ err: (err as Error).message, topic }, 'tell not sent');
      }
      return [];
    }
    try {
      const replies = await this.nc.requestMany(subject, data, { strategy: 'timer', maxWait: timeoutMs });
      for await (const msg of replies) {
        // An empty reply is the server's "no responders" status: no node hears this topic.
        if (msg.data.length === 0) break;
        waiting.delete(msg.string());
        if (waiting.size === 0) break;
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message, topic }, 'tell unanswered');
    }
    // Nodes that left meanwhile need no confirmation.
    const live = new Set(this.view.nodes);
    return [...waiting].filter((n) => live.has(n));
  }

  hear(topic: string, handler: (payload: string) => void): void {
    this.hearing.get(topic)?.unsubscribe();
    this.hearing.set(
      topic,
      this.nc.subscribe(`${this.prefix}.tell.${token(topic)}`, {
        callback: (err, msg) => {
          if (err) return;
          let told: { from?: unknown; p?: unknown };
          try {
            told = JSON.parse(msg.string()) as { from?: unknown; p?: unknown };
          } catch {
            this.log.warn({ topic }, 'bad tell dropped');
            return;
          }
          if (told.from === this.self || typeof told.p !== 'string') return;
          try {
            handler(told.p);
          } catch (e) {
            this.log.warn({ err: (e as Error).message, topic }, 'tell handler failed');
            return;
          }
          if (!msg.reply) return;
          try {
            msg.respond(this.self);
          } catch (e) {
            this.log.debug({ err: (e as Error).message, topic }, 'tell confirmation not sent');
          }
        },
      }),
    );
  }

  async request(node: string, topic: string, payload: string, timeoutMs: number): Promise<string> {
    const msg = await this.nc.request(`${this.prefix}.n.${token(node)}.${token(topic)}`, payload, { timeout: timeoutMs });
    return msg.string();
  }

  serve(topic: string, handler: (payload: string) => Promise<string>): void {
    if (this.left) return;
    this.serving.get(topic)?.unsubscribe();
    this.serving.set(
      topic,
      this.nc.subscribe(`${this.prefix}.n.${token(this.self)}.${token(topic)}`, {
        callback: (err, msg) => {
          if (err || !msg.reply) return;
          // Called in arrival order: the handler must take its place in any order synchronously.
          let answered: Promise<string>;
          try {
            answered = handler(msg.string());
          } catch (e) {
            answered = Promise.reject(e);
          }
          answered.then(
            (answer) => {
              try {
                msg.respond(answer);
              } catch (e) {
                this.log.debug({ err: (e as Error).message, topic }, 'node reply not sent');
              }
            },
            (e: unknown) => this.log.warn({ err: (e as Error).message, topic }, 'node request failed'),
          );
        },
      }),
    );
  }

  /** The broker is unreachable: every other node counts as gone until heartbeats come again. */
  disconnected(): void {
    this.connected = false;
    this.legacy.clear();
    this.untold.clear();
    if (this.peers.size > 0) {
      this.peers.clear();
      this.changed();
    } else this.notify();
  }

  reconnected(): void {
    this.connected = true;
    this.notify();
    if (this.hbSub) this.beat();
  }

  /** Goodbye: the others drop this node at once instead of after 3 heartbeats; requests to it get "no responders". */
  leave(): void {
    if (this.left) return;
    this.left = true;
    this.notify();
    clearInterval(this.timer);
    for (const sub of this.serving.values()) sub.unsubscribe();
    this.serving.clear();
    if (!this.hbSub) return;
    this.hbSub.unsubscribe();
    try {
      this.nc.publish(this.subject, JSON.stringify({ id: this.self, bye: true }));
    } catch {
      // closing anyway
    }
  }

  private beat(): void {
    if (!this.connected || this.left) return;
    try {
      // `many`: this node reads batched fan-outs (NatsBus.publishDeliveries); `pd`: it tells the
      // others of push-device registrations and hears theirs (pushDevicesTold).
      this.nc.publish(this.subject, JSON.stringify({ id: this.self, many: 1, pd: 1 }));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat not sent');
    }
  }

  private tick(): void {
    this.beat();
    const dead = Date.now() - 3 * this.heartbeatMs;
    let gone = false;
    for (const [id, at] of this.peers) {
      if (at < dead) {
        this.peers.delete(id);
        this.legacy.delete(id);
        this.untold.delete(id);
        gone = true;
      }
    }
    if (gone) this.changed();
  }

  private changed(): void {
    const nodes = [this.self, ...this.peers.keys()].sort();
    this.view = { nodes, version: this.view.version + 1 };
    this.log.info({ nodes: nodes.length }, 'cluster nodes changed');
    this.notify();
  }

  private notify(): void {
    for (const l of this.changeListeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'node change listener failed');
      }
    }
  }
}

/** The cluster Bus could not be reached at start; its message is one line for the operator. */
export class BusUnavailableError extends Error {
  override name = 'BusUnavailableError';
}

/** One subject token for any id: base64url has no '.', '*', '>' or whitespace. */
export function token(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url') || '-';
}

/**
 * Hand what the connection buffered to its socket now. nats.js (nats-core 3.x
 * `ProtocolHandler.sendCommand`) writes its outbound buffer in a microtask queued by the first
 * publication into an empty buffer, i.e. after everything else the publishing task does: a
 * batched fan-out would leave the process only after the local deliveries (a third of a
 * group's members on three nodes), the committed listeners and the rest of the commit batch.
 * `flushPending` is what that microtask calls (one socket write, no PING round trip as
 * `flush()` costs); it writes nothing while disconnected (the reconnect buffer keeps it), and
 * the microtask then finds the buffer empty. A client without it (another nats.js release)
 * keeps the microtask's timing. Used only for the batched fan-out: writing every publication
 * at once (requests, replies, per-user events) cost more end to end than it won
 * (docs/benchmarks.md, issue 15, branch hop15).
 */
function sendNow(nc: NatsConnection): void {
  (nc as unknown as { protocol?: { flushPending?: () => void } }).protocol?.flushPending?.();
}

/** publishDeliveries: at least this many users per batched fan-out. */
const BATCH_MIN = 8;

/** First bytes of a batched fan-out (publishDeliveries); never the start of an encoded BusEvent (`{`). */
const MANY = 'M';

/**
 * A batched fan-out's header: `to` = userId, inboxSeq, exceptSession (or 0), for each recipient
 * in order; `n` = the publishing node (NodeLink id: its recipients' ACKs are forwarded there,
 * AckService.route; a node of an earlier release ignores it).
 */
interface ManyHead {
  msgId?: string;
  tp?: string;
  n?: string;
  to: (string | number)[];
}

/**
 * Wire form of a batched fan-out: `M`, the header as JSON, a newline, the message body as is
 * (each recipient's frame is msgFrame(inboxSeq, body), rebuilt by the receiving node).
 */
function encodeMany(events: DeliverEvent[], body: string, node: string): string {
  const to: (string | number)[] = [];
  for (const e of events) to.push(e.userId, e.inboxSeq ?? 0, e.exceptSession ?? 0);
  const head: ManyHead = { n: node, to };
  if (events[0]!.msgId !== undefined) head.msgId = events[0]!.msgId;
  if (events[0]!.tp !== undefined) head.tp = events[0]!.tp;
  return `${MANY}${JSON.stringify(head)}\n${body}`;
}

/**
 * Wire form: the event without its frame as JSON, then a newline and the frame as is, so
 * the already serialized frame is not escaped again. JSON.stringify never emits a raw
 * newline, so the first one ends the header whatever the frame holds.
 */
function encode(event: BusEvent): string {
  if (event.type === 'deliver') {
    // The body is in the frame already (a local shortcut for the retry queue).
    const { frame, body: _body, ...head } = event;
    return `${JSON.stringify(head)}\n${frame}`;
  }
  if (event.type === 'advance') {
    const { frame, ...head } = event;
    return `${JSON.stringify(head)}\n${frame}`;
  }
  return JSON.stringify(event);
}

function decode(text: string): BusEvent {
  const nl = text.indexOf('\n');
  const head = JSON.parse(nl < 0 ? text : text.slice(0, nl)) as Record<string, unknown>;
  if (nl >= 0) head.frame = text.slice(nl + 1);
  const t = head.type;
  if (t !== 'deliver' && t !== 'advance' && t !== 'supers' && t !== 'kick' && t !== 'presence' && t !== 'broadcast' && t !== 'push') throw new Error(`unknown bus event type ${String(t)}`);
  return head as unknown as BusEvent;
}
