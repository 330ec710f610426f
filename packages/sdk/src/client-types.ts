/**
 * The public types of MagpieClient (client.ts): its states, events and options. Kept apart so
 * the parts of the client share them without importing the client itself.
 */
import type { ConvEntry, Platform } from '@magpie/protocol';
import type { Clock } from './clock.ts';
import type { MagpieClientError } from './errors.ts';
import type { AppState, HeartbeatOptions } from './heartbeat.ts';
import type { LocalMessage } from './history.ts';
import type { LocalStore } from './local-store.ts';
import type { ReconnectOptions } from './reconnect.ts';
import type { FetchLike } from './rest.ts';
import type { SendQueueOptions, SendTarget } from './send-queue.ts';
import type { SyncEngineOptions, SyncProgress } from './sync-engine.ts';
import type { WebSocketFactory } from './transport/websocket.ts';
import type { Instruction } from './instructions.ts';
import type { DeliveredCountsEvent, DeliveredEvent } from './delivered.ts';
import type { KickedFrame } from './wire.ts';
import type { ConnectTelemetryOptions } from './telemetry.ts';

export type { DeliveredEvent, DeliveredCountsEvent };

export type ClientState = 'connecting' | 'authenticating' | 'syncing' | 'online' | 'offline' | 'waiting_for_network' | 'kicked' | 'logged_out';

export interface StateEvent {
  state: ClientState;
  previous: ClientState;
}

/**
 * Why there is no connection now:
 * - `no_network`: the platform says the network is down (`setNetworkOnline(false)`, e.g. the
 *   browser's `offline` event / `navigator.onLine === false`);
 * - `server_unreachable`: the network is said to be up, but attempts to reach the server failed;
 * - `connection_lost`: a working connection dropped and the first attempt is still to come.
 */
export type OfflineReason = 'no_network' | 'server_unreachable' | 'connection_lost';

/** The connection as a banner needs it (the `connection` event; `client.connection`). */
export interface ConnectionInfo {
  state: ClientState;
  /** Null while connected, connecting, or stopped (closed, kicked, logged out). */
  offlineReason: OfflineReason | null;
  /** When the next automatic attempt starts (epoch ms on the client's clock); null when none is scheduled. */
  nextRetryAt: number | null;
  /** Consecutive failed attempts. */
  failures: number;
}

export interface ConversationEvent {
  conv: string;
  /** The entry now; null when it was deleted (removed from the list). */
  entry: ConvEntry | null;
  previous: ConvEntry | null;
}

export interface KickedEvent {
  reason: KickedFrame['reason'] | 'unknown';
  message: string;
  /** The close code that ended the connection. */
  code: number;
}

export interface MagpieClientEvents {
  state: StateEvent;
  /** The connection info changed (state, offline reason, next retry time). */
  connection: ConnectionInfo;
  /** A message was stored or changed state (sending → sent → delivered / failed). */
  message: LocalMessage;
  conversation: ConversationEvent;
  delivered: DeliveredEvent;
  /** Normal groups: how many members' devices stored own messages rose (the `message` event follows for each stored or outgoing one). */
  deliveredCounts: DeliveredCountsEvent;
  kicked: KickedEvent;
  syncProgress: SyncProgress;
  /** An instruction from the server was executed (before any sync when it came with the hello reply). */
  instruction: { instruction: Instruction; ok: boolean; result: unknown };
  error: MagpieClientError;
  /** A server frame the client itself does not handle (e.g. `relation`: feed it to RelationSync.handleFrame). */
  frame: { type: string; [key: string]: unknown };
}

export interface MagpieClientOptions {
  /** HTTP origin of the server, e.g. `https://im.example.com`: REST under /api; the socket URL is derived (ws(s)://…/ws). */
  baseUrl?: string;
  /** WebSocket URL; default derived from baseUrl. */
  url?: string;
  /** Session token from login. */
  token?: string;
  /** Default: the global WebSocket (browsers, Node 22+); in Node 20 pass `(url) => new WebSocket(url)` from `ws`. */
  webSocketFactory?: WebSocketFactory;
  fetch?: FetchLike;
  clock?: Clock;
  /** Random source for backoff jitter. */
  random?: () => number;
  /** Generator of clientMsgId and deviceId (default: time-ordered clientMsgIds, random deviceIds; ids.ts). */
  newId?: () => string;
  store?: LocalStore;
  app?: { version?: string; platform?: Platform };
  /** Default timeout of a request. */
  requestTimeoutMs?: number;
  heartbeat?: Partial<HeartbeatOptions>;
  reconnect?: Partial<ReconnectOptions>;
  /** Connect telemetry (telemetry.ts): on by default when `baseUrl` is set; `{ enabled: false }` turns it off. */
  telemetry?: Partial<ConnectTelemetryOptions>;
  sync?: Partial<SyncEngineOptions>;
  sendQueue?: Partial<SendQueueOptions>;
  /** `limit` of each `convs` page. */
  convPageSize?: number;
  appState?: AppState;
  networkOnline?: boolean;
  onListenerError?: (err: unknown, event: keyof MagpieClientEvents) => void;
}

export interface SendInput extends SendTarget {
  kind?: string;
  body: unknown;
  /** Group messages: user ids to mention, or 'all'. */
  mentions?: string[] | 'all';
}

export interface ConversationPatch {
  pinned?: boolean;
  muted?: boolean;
  draft?: string;
  deleted?: true;
}

