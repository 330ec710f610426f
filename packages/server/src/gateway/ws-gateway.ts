import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { MagpieError, PROTOCOL_VERSIONS, frameIdOf, parseJsonBounded, requestIdOf, validateClientFrame, type ClientFrame, type HelloFrame } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { Bus, BusEvent } from '../bus/bus.ts';
import type { Config } from '../config/config.ts';
import type { Metrics } from '../metrics.ts';
import type { AccountService, Principal } from '../services/account-service.ts';
import type { AckService } from '../services/ack-service.ts';
import type { MessagingService } from '../services/message-service.ts';
import { errorFrame, toMagpieError } from '../util/errors.ts';
import { writeRawError } from '../http/api-errors.ts';
import type { RateLimiter } from '../util/rate-limiter.ts';
import type { UserLimits } from '../util/user-limits.ts';
import { waitForStore } from '../util/store-unavailable.ts';
import { Connection, type ConnectionLimits, type ConnectionTask } from './connection.ts';
import { SendBudget } from './send-budget.ts';
import { FrameOrder, type OrderedFrame } from './frame-order.ts';
import { ConnectionRegistry } from './registry.ts';
import { SuperGroupIndex } from './super-index.ts';
import { SuperHandover } from './super-handover.ts';
import { advancedFrame } from '../services/message-service.ts';
import { SendOrderGuard } from './send-order.ts';
import type { RetryQueue } from '../delivery/retry-queue.ts';
import type { InstructionService } from '../instructions/instruction-service.ts';
import { RECEIPT_FRAME_TYPES, type ReceiptFrame, type ReceiptsModule } from '../receipts/index.ts';
import type { MessageTracer } from '../tracing/tracer.ts';

export interface GatewayDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  bus: Bus;
  accounts: AccountService;
  messaging: MessagingService;
  acks: AckService;
  ipLimiter: RateLimiter;
  /** Per-user request and ping budgets, shared with the REST API. */
  userLimits: UserLimits;
  retry: RetryQueue;
  instructions: InstructionService;
  /** This node's connections; built by the caller when others (offline push's presence) read it too. */
  registry?: ConnectionRegistry;
  /** Read receipts, typing, presence (src/receipts/). */
  receipts?: ReceiptsModule;
  /** Records each device delivery of a traced message (tracing/). */
  tracer?: MessageTracer;
}

const KICK_CLOSE = { new_login: 'kicked', logout: 'token_revoked', logout_all: 'token_revoked', admin: 'kicked' } as const;
const KICK_TEXT = {
  new_login: 'signed in on another device of the same kind',
  same_device: 'signed in again on this device',
  logout: 'this device was logged out',
  logout_all: 'all devices were logged out',
  admin: 'disconnected by an administrator',
} as const;

/** Frames waiting behind a running one before the gateway stops reading the socket. */
const MAX_QUEUED_FRAMES = 256;
/** Longest delay a Node timer takes (2^31 − 1 ms, ~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The `hello` reply (protocol WelcomeResult) as JSON text: the same text as
 * `JSON.stringify({ type: 'reply', id, result: { version, userId, … } })` in that key order,
 * written out around the parts that vary (one frame per connect: the object and its
 * stringification were ~1 % of a reconnect storm's CPU; issue 23). Strings and the lists
 * still go through JSON.stringify.
 * @internal exported for its test
 */
export function welcomeFrame(
  id: number,
  version: number,
  userId: string,
  deviceId: string,
  sync: { mode: string; latest: number; ringStart: number },
  heartbeatMs: number,
  supers: readonly unknown[],
  instructions: readonly unknown[],
  serverTime: number,
  limits: { maxFrameBytes: number; maxMessageBytes: number },
): string {
  return (
    `{"type":"reply","id":${id},"result":{"version":${version},"userId":${JSON.stringify(userId)},"deviceId":${JSON.stringify(deviceId)},` +
    `"inboxSeq":${sync.latest},"ringStart":${sync.ringStart},"sync":${JSON.stringify(sync.mode)},"heartbeatMs":${heartbeatMs},` +
    `"supers":${supers.length === 0 ? '[]' : JSON.stringify(supers)},"instructions":${instructions.length === 0 ? '[]' : JSON.stringify(instructions)},` +
    `"serverTime":${serverTime},"limits":{"maxFrameBytes":${limits.maxFrameBytes},"maxMessageBytes":${limits.maxMessageBytes}}}}`
  );
}

/**
 * One received frame on its way through its connection's request slots (Connection.submit)
 * and then its FrameOrder: a single object per frame carries it through both, instead of a
 * closure and a promise at each step.
 */
class FrameJob implements ConnectionTask, OrderedFrame {
  readonly pipelined: boolean;
  /** A send: it also takes a slot of the node's send budget (gateway/send-budget.ts). */
  readonly budgeted: boolean;
  /** An authenticated connection's ACK: it may start ahead of sends waiting for the budget (ConnectionTask.overtakes). */
  readonly overtakes: boolean;
  private connDone: (() => void) | undefined;

  constructor(
    private readonly gateway: WsGateway,
    readonly conn: Connection,
    private readonly order: FrameOrder,
    readonly frame: ClientFrame | undefined,
    readonly invalid: unknown,
    readonly id: number | undefined,
  ) {
    this.pipelined = frame?.type === 'send' || frame?.type === 'ack';
    this.budgeted = frame?.type === 'send';
    this.overtakes = frame?.type === 'ack' && conn.principal !== undefined;
  }

  /** A request slot of the connection is free: take the frame's place in arrival order. */
  run(done: () => void): void {
    this.connDone = done;
    this.order.submit(this);
  }

  /** Its turn in the FrameOrder. */
  start(done: () => void): void {
    void this.gateway.onFrame(this, done);
  }

  /** Handled: the next frames in order, then the connection's next request, may go. */
  finished(orderDone: () => void): void {
    orderDone();
    const connDone = this.connDone;
    this.connDone = undefined;
    connDone?.();
  }
}

/** The gateway's state on its WebSocket, read by the listeners shared by all connections. */
const kConn = Symbol('magpie.connection');
const kOrder = Symbol('magpie.frameOrder');
type GatewaySocket = WebSocket & { [kConn]: Connection; [kOrder]: FrameOrder };

/**
 * The access gateway: accepts WebSocket connections at /ws, authenticates with `hello`,
 * validates every frame, dispatches requests to the services, and writes live events
 * from the Bus to the connections of this node.
 */
export class WsGateway {
  readonly registry: ConnectionRegistry;
  /** Super-group followers; the Bus routes a conversation's advances here while it has any. */
  readonly supers = new SuperGroupIndex({
    gained: (conv) => this.d.bus.watchConv(conv),
    lost: (conv) => {
      this.d.bus.unwatchConv(conv);
      this.handover.lost(conv);
    },
  });
  /** Exact handover of super-group live delivery around membership changes (member epochs). */
  private readonly handover: SuperHandover;
  private readonly wss: WebSocketServer;
  private readonly sweepTimer: NodeJS.Timeout;
  /** Between the sweeps of `sweep()` (ms). */
  private readonly sweepMs: number;
  /**
   * Connections that have not said hello yet, each with its deadline (performance.now()). All
   * wait the same helloTimeoutMs, so insertion order is deadline order: one timer, armed for
   * the first, closes them (no timer per connection).
   */
  private readonly unauthenticated = new Map<Connection, number>();
  private helloTimer: NodeJS.Timeout | undefined;
  /** WebSocket listeners shared by every connection (`this` is the socket; no closures per connection). */
  private readonly onWsMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onWsClose: (this: WebSocket) => void;
  private readonly onWsError: (this: WebSocket, err: Error) => void;
  /** Set by `drain`: new WebSocket upgrades are refused with 503. */
  private draining = false;
  /** Per connection: sends held behind a refused one (issue 14, typing order). */
  private readonly sendOrder = new WeakMap<Connection, SendOrderGuard>();

  constructor(private readonly d: GatewayDeps) {
    this.registry = d.registry ?? new ConnectionRegistry();
    const { limits } = d.config;
    // Hard cap at 4× the frame limit: frames between the limit and the cap get a typed
    // error; beyond the cap ws closes with 1009 without buffering the rest.
    // No client tracking: the registry and `unauthenticated` already hold every connection
    // (ws's own Set cost an add, a close listener and a delete per connection).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes * 4, perMessageDeflate: false, clientTracking: false });
    this.handover = new SuperHandover({
      index: this.supers,
      connectionsOf: (u) => this.registry.of(u),
      memberEpoch: (conv) => d.messaging.memberEpoch(conv),
      messagesAfter: (conv, seq, limit) => d.messaging.messagesAfter(conv, seq, limit),
      frameOf: advancedFrame,
      delivered: (n) => d.metrics.deliveries.inc({ type: 'advanced' }, n),
    });
    // Handshake refusals (bad key, version, method) in the documented error shape instead of ws's text/html.
    this.wss.on('wsClientError', (err, socket) => writeRawError(socket, 400, new MagpieError('invalid', err.message)));
    d.bus.subscribe((ev) => this.onBusEvent(ev));
    d.bus.onResume(() => void this.nudgeAll());
    d.bus.servePresence((userIds) => {
      const held = new Map<string, string[]>();
      for (const u of userIds) {
        const devices = this.onlineDevices(u);
        if (devices.length > 0) held.set(u, devices);
      }
      return held;
    });
    this.sweepMs = Math.min(5000, Math.ceil(d.config.heartbeatMs / 2), Math.ceil(limits.slowConsumerMs / 2));
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
    const gateway = this;
    this.onWsMessage = function (data, isBinary) {
      const conn = (this as GatewaySocket)[kConn];
      conn.lastSeen = Date.now();
      gateway.onMessage(conn, (this as GatewaySocket)[kOrder], data, isBinary);
    };
    this.onWsClose = function () {
      (this as GatewaySocket)[kConn].markClosed();
    };
    this.onWsError = function (err) {
      const conn = (this as GatewaySocket)[kConn];
      gateway.d.log.debug({ err: err.message, ip: conn.ip }, 'socket error');
      conn.markClosed();
      this.terminate();
    };
  }

  /** True when the user has an authenticated connection on this node. */
  isOnline(userId: string): boolean {
    for (const _ of this.registry.of(userId)) return true;
    return false;
  }

  /** Device ids of the user connected to this node. */
  onlineDevices(userId: string): string[] {
    return [...this.registry.of(userId)].flatMap((c) => (c.principal ? [c.principal.deviceId] : []));
  }

  /** Hook for the HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '';
    if (url !== '/ws' && !url.startsWith('/ws?')) {
      writeRawError(socket, 404, new MagpieError('not_found', 'no such route'));
      return;
    }
    if (this.draining) {
      writeRawError(socket, 503, new MagpieError('unavailable', 'this node is draining; connect again (the load balancer picks another node)'));
      return;
    }
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (this.d.ipLimiter.take(ip) > 0) {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":{"code":"rate_limited","message":"too many connections from this address"}}');
      return;
    }
    // ws takes over this same socket; the connection keeps it to write shared frames directly.
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, ip, socket));
  }

  /** A connection's output and request budget: the same for all, made once (with the node's send budget). */
  private budget: ConnectionLimits | undefined;
  private readonly forgetConn = (c: Connection, reason: string): void => this.forget(c, reason);

  private accept(ws: WebSocket, ip: string, socket: Duplex): void {
    const { config, metrics } = this.d;
    const { limits } = config;
    const budget = (this.budget ??= {
      maxBuffered: limits.maxBufferedBytes,
      maxInflight: limits.maxInflightPerConnection,
      maxSendsInflight: limits.maxSendsInFlightPerConnection,
      stallMs: limits.slowConsumerMs,
      ...(limits.maxSendsInFlight > 0 ? { sends: new SendBudget(limits.maxSendsInFlight) } : {}),
    });
    const conn = new Connection(ws, ip, budget, config.heartbeatMs, this.forgetConn, socket);
    metrics.connections.inc();
    this.unauthenticated.set(conn, performance.now() + limits.helloTimeoutMs);
    this.armHelloTimer();
    const s = ws as GatewaySocket;
    s[kConn] = conn;
    s[kOrder] = new FrameOrder(MAX_QUEUED_FRAMES, ws);
    ws.on('message', this.onWsMessage as (data: unknown, isBinary: boolean) => void);
    ws.on('close', this.onWsClose);
    ws.on('error', this.onWsError);
  }

  /** Arm the hello timer for the first connection still waiting to say hello (if not armed). */
  private armHelloTimer(): void {
    if (this.helloTimer) return;
    const first = this.unauthenticated.values().next();
    if (first.done) return;
    this.helloTimer = setTimeout(() => this.helloTimeouts(), Math.max(0, first.value - performance.now()));
    this.helloTimer.unref();
  }

  /** Close, with `hello_timeout`, every connection whose hello deadline has passed; re-arm for the next. */
  private helloTimeouts(): void {
    this.helloTimer = undefined;
    const now = performance.now();
    const late: Connection[] = [];
    for (const [conn, due] of this.unauthenticated) {
      if (due > now) break;
      late.push(conn);
    }
    for (const conn of late) {
      this.unauthenticated.delete(conn);
      conn.close('hello_timeout');
    }
    this.armHelloTimer();
  }

  private forget(conn: Connection, reason: string): void {
    if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
    this.d.metrics.connections.dec();
    if (reason !== 'client') this.d.metrics.closes.inc({ reason });
    this.unauthenticated.delete(conn);
    this.supers.drop(conn);
    if (conn.principal && this.registry.remove(conn.principal.userId, conn)) {
      this.d.bus.unwatchUser(conn.principal.userId);
      this.d.receipts?.presence.drop(conn);
      this.d.receipts?.presence.changed(conn.principal.userId, false);
    }
  }

  /**
   * Decode at once, then run the frame in order: at most maxSendsInFlightPerConnection sends
   * and maxInflightPerConnection other frames of a connection are handled at once
   * (Connection.submit: the rest wait, in arrival order, the socket unread, as they do while
   * its output is backed up), and among those the FrameOrder keeps arrival order (sends and
   * ACKs pipeline with each other; see frame-order.ts). Invalid frames are answered in order too.
   */
  private onMessage(conn: Connection, order: FrameOrder, buf: Buffer, isBinary: boolean): void {
    const { limits } = this.d.config;
    let id: number | undefined;
    let frame: ClientFrame | undefined;
    let invalid: unknown;
    try {
      if (buf.length > limits.maxFrameBytes) {
        // Bounded by ws's maxPayload (4× the limit) and by the nesting check, so reading the id is cheap enough.
        id = isBinary ? undefined : frameIdOf(buf.toString('utf8'), limits.maxJsonDepth);
        throw new MagpieError('frame_too_large', `frame of ${buf.length} bytes exceeds ${limits.maxFrameBytes}`);
      }
      if (isBinary) throw new MagpieError('bad_frame', 'binary frames are not part of protocol v1');
      // Nesting is bounded before parsing and validation (a deeply nested frame gets no id).
      const raw = parseJsonBounded(buf.toString('utf8'), limits.maxJsonDepth);
      id = requestIdOf(raw);
      frame = validateClientFrame(raw);
    } catch (err) {
      invalid = err;
    }
    conn.submit(new FrameJob(this, conn, order, frame, invalid, id));
  }

  /** Run one frame and answer its errors; never rejects. `job.finished(done)` is called once it has finished. */
  async onFrame(job: FrameJob, done: () => void): Promise<void> {
    const { conn, frame, invalid, id } = job;
    try {
      if (conn.closed) return;
      if (!frame) throw invalid;
      // An ACK needs no await (and no promise of its own); hello straight away: one async frame fewer on every connect.
      if (frame.type === 'ack' && conn.principal) this.ack(conn.principal, conn, frame.inboxSeq);
      else if (frame.type === 'hello') await this.hello(conn, frame);
      else await this.dispatch(conn, frame);
    } catch (err) {
      const e = toMagpieError(err, this.d.log);
      this.d.metrics.errors.inc({ code: e.code });
      conn.send(errorFrame(e, id), true);
      if (e.code !== 'rate_limited' && conn.countError(this.d.config.limits.maxErrorsPer10s, 10_000)) conn.close('too_many_errors');
    } finally {
      job.finished(done);
    }
  }

  /** A cumulative ACK from an authenticated device. */
  private ack(p: Principal, conn: Connection, inboxSeq: number): void {
    // No object per ACK frame while debug logging is off.
    if (this.d.log.isLevelEnabled('debug')) this.d.log.debug({ userId: p.userId, deviceId: p.deviceId, inboxSeq }, 'ack');
    // Delivered state only as far as this device was given messages; the cursor takes the rest.
    this.d.acks.ack(p.userId, p.deviceId, inboxSeq, conn.obtained.ackSegments(inboxSeq), conn.ackVia);
    this.d.retry.ack(p.userId, p.deviceId, inboxSeq, conn);
  }

  /** Every frame but hello (onFrame answers hello itself) and an authenticated ack. */
  private async dispatch(conn: Connection, f: ClientFrame): Promise<void> {
    const p = conn.principal;
    if (!p) throw new MagpieError('hello_required');
    const { messaging } = this.d;
    switch (f.type) {
      case 'ping': {
        this.d.userLimits.ping(p.userId);
        if (f.interval) conn.heartbeatMs = Math.max(f.interval, this.d.config.heartbeatMs);
        const latest = await messaging.latestInboxSeq(p.userId);
        conn.send(JSON.stringify({ type: 'pong', ...(f.id !== undefined ? { id: f.id } : {}), inboxSeq: latest, time: Date.now() }));
        return;
      }
      case 'ack':
        this.ack(p, conn, f.inboxSeq);
        return;
    }
    let order: SendOrderGuard | undefined;
    if (f.type === 'send') {
      order = this.sendOrder.get(conn);
      if (!order) this.sendOrder.set(conn, (order = new SendOrderGuard()));
      order.check(f);
    }
    try {
      this.d.userLimits.request(p.userId);
    } catch (err) {
      if (f.type === 'send' && err instanceof MagpieError) order?.refused(f, err);
      throw err;
    }
    let result: unknown;
    switch (f.type) {
      case 'send': {
        let sent;
        // Receipts keep a send's extras until it is committed; a plain send has none (no object, no key).
        const receipts = f.receipt !== undefined || f.mentions !== undefined || f.replyTo !== undefined ? this.d.receipts?.service : undefined;
        receipts?.beforeSend(p.userId, f.clientMsgId, { receipt: f.receipt, mentions: f.mentions, replyTo: f.replyTo });
        const debug = this.d.log.isLevelEnabled('debug');
        const t0 = debug ? performance.now() : 0;
        if (debug) this.d.log.debug({ reqId: f.id, userId: p.userId, deviceId: p.deviceId, clientMsgId: f.clientMsgId, to: f.to, conv: f.conv, kind: f.kind }, 'send');
        try {
          sent = await messaging.sendWithJson(p, f);
        } catch (err) {
          if (debug) this.d.log.debug({ reqId: f.id, userId: p.userId, deviceId: p.deviceId, clientMsgId: f.clientMsgId, err: (err as Error).message }, 'send refused');
          order?.refused(f, err);
          throw err;
        } finally {
          receipts?.afterSend(p.userId, f.clientMsgId);
        }
        if (debug) {
          const m = sent.message;
          this.d.log.debug({ reqId: f.id, userId: p.userId, deviceId: p.deviceId, clientMsgId: f.clientMsgId, msgId: m.id, conv: m.conv, seq: m.seq, inboxSeq: sent.inboxSeq, duplicate: sent.duplicate, ms: Math.round((performance.now() - t0) * 10) / 10 }, 'committed');
        }
        // The same text as JSON.stringify of the reply, with the message JSON the fan-out already made.
        // The ACK: the message is durable. Urgent: written ahead of the fan-out just queued for
        // the message's recipients (a super group's thousands of followers), not behind it.
        conn.send(`{"type":"reply","id":${JSON.stringify(f.id)},"result":{"message":${sent.json ?? JSON.stringify(sent.message)},"inboxSeq":${sent.inboxSeq},"duplicate":${sent.duplicate}}}`, true);
        return;
      }
      case 'sync': {
        const page = await messaging.syncPage(p.userId, f.since, f.limit);
        const upTo = page.items.at(-1)?.inboxSeq;
        if (upTo !== undefined) {
          this.d.retry.pulled(p.userId, p.deviceId, f.since, upTo, f.have);
          conn.obtained.gaveRange(f.since, upTo);
        }
        result = page;
        break;
      }
      case 'history':
        result = await messaging.history(p.userId, f.conv, f);
        break;
      case 'convs':
        result = await messaging.conversations(p.userId, f.since, f.limit);
        break;
      case 'read': {
        const entry = await messaging.markRead(p, f.conv, f.seq);
        // The report is stored before the reply; its notices go out in the next batch.
        await this.d.receipts?.service.onRead(p.userId, f.conv, entry.readSeq);
        result = { entry };
        break;
      }
      case 'receipts.query':
      case 'receipts.members':
      case 'typing':
      case 'presence.sub': {
        if (!this.d.receipts || !RECEIPT_FRAME_TYPES.has(f.type)) throw new MagpieError('invalid', 'read receipts are not enabled on this server');
        result = await this.d.receipts.handle(conn, p.userId, f as ReceiptFrame);
        if (f.id === undefined) return;
        break;
      }
      case 'instruction.result':
        result = { recorded: await this.d.instructions.report(p.userId, p.deviceId, f.instructionId, f.ok, f.result) };
        break;
      case 'conv.update': {
        const { conv, type: _t, id: _i, ...patch } = f;
        result = { entry: await messaging.updateEntry(p, conv, patch) };
        break;
      }
    }
    conn.send(JSON.stringify({ type: 'reply', id: f.id, result }), true);
  }

  private async hello(conn: Connection, f: HelloFrame): Promise<void> {
    // Frames run in order, so an earlier hello has finished: it either set the identity or closed the socket.
    if (conn.principal) throw new MagpieError('invalid', 'this connection has already said hello; its identity is fixed (open another connection for another session)');
    let version = Number.NEGATIVE_INFINITY;
    for (const v of f.versions) if (v > version && (PROTOCOL_VERSIONS as readonly number[]).includes(v)) version = v;
    if (!Number.isFinite(version)) {
      conn.send(errorFrame(new MagpieError('unsupported_version', `server speaks versions ${PROTOCOL_VERSIONS.join(', ')}`), f.id));
      conn.close('unsupported_version');
      return;
    }
    let principal;
    const wait = this.d.config.pg.waitMs;
    try {
      principal = await waitForStore(() => this.d.accounts.authenticate(f.token), wait);
    } catch (err) {
      const e = toMagpieError(err, this.d.log);
      conn.send(errorFrame(e, f.id));
      // A busy database is no reason to give up the token: the client may send hello again.
      if (e.code !== 'unavailable') conn.close('unauthorized');
      return;
    }
    if (conn.closed) return;
    const { maxSocketsPerUser } = this.d.config.limits;
    // Counted and registered in the same turn: concurrent hellos of one user cannot both pass.
    if (this.registry.count(principal.userId) >= maxSocketsPerUser) {
      conn.send(errorFrame(new MagpieError('rate_limited', `a user may hold at most ${maxSocketsPerUser} connections to one server`), f.id));
      conn.close('too_many_connections');
      return;
    }
    if (f.app?.version) principal.appVersion = f.app.version;
    conn.principal = principal;
    conn.batching = f.caps?.includes('batch') ?? false;
    conn.acks = f.caps?.includes('ack') ?? false;
    // The device holds everything up to its inboxSeq: deliveries tracked on an older connection end here.
    this.d.retry.ack(principal.userId, principal.deviceId, f.inboxSeq);
    this.unauthenticated.delete(conn);
    // The hello timer stays armed for the next waiting connection; it re-arms itself when it fires.
    // Register before reading the inbox state: a message committed in between is then
    // either below `latest` (pulled) or delivered live (dropped by the client as a duplicate).
    // On a cluster Bus the user's events reach this node once its interest is in effect.
    if (this.registry.add(principal.userId, conn)) {
      this.d.receipts?.presence.changed(principal.userId, true);
      await this.d.bus.watchUser(principal.userId);
    }
    // A revocation that happened before the kick could reach this connection (while the
    // token was being checked, or before this node's interest was in effect) is seen here;
    // one after it arrives as a kick. The same read gives the expiry to close at, the inbox
    // state, and whether there are super groups to follow and instructions to hand over.
    const state = await waitForStore(() => this.d.messaging.helloState(principal, f.inboxSeq, this.d.accounts.time()), wait);
    const { sync, expiresAt } = state;
    if (conn.closed) return;
    if (expiresAt === null) {
      conn.send(errorFrame(new MagpieError('unauthorized', 'token is unknown, expired or revoked'), f.id));
      conn.close('unauthorized');
      return;
    }
    this.closeAtExpiry(conn, expiresAt);
    // Full sync: the device skips its inbox up to `latest`; nothing in that range becomes delivered through it.
    const skip = conn.obtained.start(f.inboxSeq, sync.mode === 'full' ? sync.latest : undefined);
    if (skip) this.d.acks.ack(principal.userId, principal.deviceId, Math.min(f.inboxSeq, sync.latest), [skip]);
    // None at the read above (after registering): a later join reaches this connection as a `supers` event.
    const supers = state.inSuperGroups ? await this.followSupers(conn, principal.userId) : [];
    if (!supers) return;
    // Pending instructions go out in this answer, before the client's first sync page.
    const instructions = state.pendingInstructions ? await waitForStore(() => this.d.instructions.forLogin(principal.userId, principal.deviceId), wait) : [];
    if (conn.closed) return;
    conn.send(welcomeFrame(f.id, version, principal.userId, principal.deviceId, sync, this.d.config.heartbeatMs, supers, instructions, Date.now(), this.d.config.limits));
  }

  /**
   * Close the connection with 4100 when its session expires. Only an expiry within two sweep
   * intervals gets a timer of its own; a later one is noted on the connection and the sweep
   * arms its timer once it comes that near (sessions last days: no timer per connection).
   */
  private closeAtExpiry(conn: Connection, expiresAt: number): void {
    conn.expiresAt = expiresAt;
    const left = expiresAt - Date.now();
    if (left <= 0) {
      conn.close('unauthorized', 'the session expired');
      return;
    }
    if (left > 2 * this.sweepMs) return;
    conn.expiryTimer = setTimeout(() => this.closeAtExpiry(conn, expiresAt), Math.min(left, MAX_TIMER_MS));
    conn.expiryTimer.unref();
  }

  /**
   * Follow the user's super groups, then read their positions — the same order as for the
   * inbox: a message committed after the follow reaches the connection live, one committed
   * before it is at or below the lastSeq returned. (Reading first left a window in which a
   * message was neither.) Null when the connection closed meanwhile.
   */
  private async followSupers(conn: Connection, userId: string): Promise<{ conv: string; lastSeq: number }[] | null> {
    const wait = this.d.config.pg.waitMs;
    const before = await waitForStore(() => this.d.messaging.superGroupsOf(userId), wait);
    if (conn.closed) return null;
    await Promise.all(before.flatMap((s) => [this.supers.add(s.conv, conn), this.handover.learnEpoch(s.conv)]));
    const supers = await waitForStore(() => this.d.messaging.superGroupsOf(userId), wait);
    if (conn.closed) {
      this.supers.drop(conn);
      return null;
    }
    // Joined or left in between: the `supers` events already adjusted most of it; this makes it exact.
    const now = new Set(supers.map((s) => s.conv));
    for (const conv of [...this.supers.of(conn)]) if (!now.has(conv)) this.supers.remove(conv, conn);
    for (const s of supers) void this.supers.add(s.conv, conn);
    return supers;
  }

  private onBusEvent(ev: BusEvent): void {
    if (ev.type === 'deliver') {
      // Only `msg` frames carry an inboxSeq (message-service.ts).
      const msg = ev.inboxSeq !== undefined;
      const conns = this.registry.of(ev.userId);
      for (let i = 0; i < conns.length; i++) {
        const conn = conns[i]!;
        const p = conn.principal;
        if (!p || p.tokenHash === ev.exceptSession) continue;
        if (ev.devices && !ev.devices.includes(p.deviceId)) continue;
        conn.send(ev.frame);
        if (ev.inboxSeq !== undefined) {
          conn.obtained.gave(ev.inboxSeq);
          conn.ackVia = ev.via;
        }
        this.countDelivery(msg);
        if (ev.inboxSeq !== undefined && conn.acks) this.d.retry.track(p.userId, p.deviceId, conn, ev.inboxSeq, ev.frame, ev.msgId, ev.body);
        if (ev.msgId !== undefined && ev.inboxSeq !== undefined) this.d.tracer?.delivered(ev.msgId, p.userId, p.deviceId, ev.inboxSeq, conn.acks, ev.tp);
      }
      return;
    }
    if (ev.type === 'advance') {
      this.handover.onAdvance(ev);
      return;
    }
    if (ev.type === 'supers') {
      this.handover.onSupers(ev);
      return;
    }
    // Presence is receipts/presence.ts's; audience-all notifications are src/notifications/fan-out.ts's; push hints the push module's (app.ts).
    if (ev.type === 'presence' || ev.type === 'broadcast' || ev.type === 'push') return;
    const close = KICK_CLOSE[ev.reason];
    for (const conn of [...this.registry.of(ev.userId)]) {
      if (!conn.principal || !ev.tokenHashes.includes(conn.principal.tokenHash)) continue;
      const text = ev.reason === 'new_login' && ev.device === conn.principal.deviceId ? KICK_TEXT.same_device : KICK_TEXT[ev.reason];
      conn.send(JSON.stringify({ type: 'kicked', reason: ev.reason, message: text }));
      conn.close(close, text);
    }
  }

  /** magpie_deliveries_total, added up per event-loop turn (a 500-member fan-out is one inc per type, not 500). */
  private counted = { msg: 0, event: 0, scheduled: false };

  private countDelivery(msg: boolean): void {
    const c = this.counted;
    if (msg) c.msg++;
    else c.event++;
    if (c.scheduled) return;
    c.scheduled = true;
    setImmediate(() => {
      c.scheduled = false;
      if (c.msg > 0) this.d.metrics.deliveries.inc({ type: 'msg' }, c.msg);
      if (c.event > 0) this.d.metrics.deliveries.inc({ type: 'event' }, c.event);
      c.msg = 0;
      c.event = 0;
    });
  }

  /**
   * The Bus is back after an outage: live events of the meantime may be lost, so every
   * connection gets an unsolicited `pong` with its user's newest inboxSeq — a client behind
   * it pulls at once (as after any pong) instead of at its next heartbeat.
   */
  private async nudgeAll(): Promise<void> {
    const users = [...new Set([...this.registry.all()].flatMap((c) => (c.principal ? [c.principal.userId] : [])))];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < users.length) {
        const u = users[next++]!;
        try {
          const latest = await this.d.messaging.latestInboxSeq(u);
          const frame = JSON.stringify({ type: 'pong', inboxSeq: latest, time: Date.now() });
          for (const conn of this.registry.of(u)) conn.send(frame);
        } catch (err) {
          this.d.log.warn({ err: (err as Error).message, userId: u }, 'resume nudge failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, users.length) }, worker));
    this.d.log.info({ users: users.length }, 'bus resumed: clients told to pull');
  }

  /** Close connections silent for two heartbeat intervals and slow consumers that stopped reading; sweep idle rate buckets. */
  private sweep(): void {
    const now = Date.now();
    for (const conn of this.registry.all()) {
      if (conn.stalled(now)) conn.close('slow_consumer');
      else if (!conn.heardFrom(now)) conn.close('heartbeat_timeout');
      else if (!conn.expiryTimer && conn.expiresAt - now <= 2 * this.sweepMs) this.closeAtExpiry(conn, conn.expiresAt);
    }
    this.d.userLimits.sweep();
    this.d.ipLimiter.sweep();
  }

  /**
   * Graceful drain (SIGTERM): refuse new upgrades; on every connection stop taking requests,
   * let the running ones finish (a send's commit and its ACK), then close with 4506 `draining`
   * and a reason `retryAfterMs=<ms>` drawn uniformly from [reconnectMinMs, reconnectMaxMs], so
   * the node's clients come back spread over that window (on other nodes) rather than at once.
   */
  async drain(opts: { timeoutMs: number; reconnectMinMs: number; reconnectMaxMs: number; random?: () => number }): Promise<number> {
    this.draining = true;
    const random = opts.random ?? Math.random;
    const conns = [...this.registry.all(), ...this.unauthenticated.keys()];
    await Promise.all(
      conns.map(async (conn) => {
        await conn.quiesce(opts.timeoutMs);
        const after = opts.reconnectMinMs + Math.floor(random() * (opts.reconnectMaxMs - opts.reconnectMinMs + 1));
        conn.close('draining', `retryAfterMs=${after}`);
      }),
    );
    this.d.log.info({ connections: conns.length }, 'drained: every connection closed with 4506');
    return conns.length;
  }

  /** Close every connection with `shutting_down` (clients reconnect elsewhere or later). */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    clearTimeout(this.helloTimer);
    for (const conn of [...this.registry.all(), ...this.unauthenticated.keys()]) conn.close('shutting_down');
    this.wss.close();
  }
}
