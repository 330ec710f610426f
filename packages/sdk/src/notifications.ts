import type { Notification, NotificationPage, UserService } from '@magpie/protocol';
import { TypedEmitter } from './emitter.ts';
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

/** UserService: a service account as this user sees it (with mute/unsubscribe and unread). */
export type { Notification, NotificationPage, ServiceAccount, UserService } from '@magpie/protocol';


/**
 * The user's notification conversations over REST: service accounts with settings and unread
 * counts, notifications since a cursor, mute, unsubscribe, mark read. Errors are
 * MagpieClientError with the server's code (`invalid` for a bad cursor, `not_found`).
 */
export class NotificationsApi {
  private readonly http: AuthedRest;

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  async services(): Promise<UserService[]> {
    return (await this.http.req<{ services: UserService[] }>('GET', '/api/notifications/services')).services;
  }

  /** One page after `cursor` (none: from the oldest kept), oldest first. */
  page(cursor?: string, limit = 50): Promise<NotificationPage> {
    const p = new URLSearchParams({ limit: String(limit) });
    if (cursor) p.set('cursor', cursor);
    return this.http.req('GET', `/api/notifications?${p.toString()}`);
  }

  async setMuted(service: string, muted: boolean): Promise<UserService> {
    return (await this.http.req<{ service: UserService }>('PATCH', `/api/notifications/services/${encodeURIComponent(service)}`, { muted })).service;
  }

  /** Unsubscribed: no more notifications from this service (what arrived before stays). */
  async setUnsubscribed(service: string, unsubscribed: boolean): Promise<UserService> {
    return (await this.http.req<{ service: UserService }>('PATCH', `/api/notifications/services/${encodeURIComponent(service)}`, { unsubscribed })).service;
  }

  async markRead(service: string, seq: number): Promise<UserService> {
    return (await this.http.req<{ service: UserService }>('POST', `/api/notifications/services/${encodeURIComponent(service)}/read`, { seq })).service;
  }
}

/** The notification cursor (docs/protocol.md): base64url of JSON `{r: ring slot, f: {service: feed seq}}`. */
export interface NotificationCursor {
  r: number;
  f: Record<string, number>;
}

function fromBase64Url(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0)));
}

function toBase64Url(text: string): string {
  let bin = '';
  for (const byte of new TextEncoder().encode(text)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Read a cursor the server made; null when it is not one. */
export function decodeCursor(text: string): NotificationCursor | null {
  try {
    const v = JSON.parse(fromBase64Url(text)) as NotificationCursor;
    return typeof v.r === 'number' && typeof v.f === 'object' && v.f !== null ? { r: v.r, f: { ...v.f } } : null;
  } catch {
    return null;
  }
}

export function encodeCursor(c: NotificationCursor): string {
  return toBase64Url(JSON.stringify(c));
}

export interface NotificationInboxEvents {
  /** New notifications were merged (live or pulled), oldest first. */
  notifications: Notification[];
  /** The ring wrapped since the stored cursor: older list/segment notifications are gone. */
  wrapped: { cursor: string };
  error: unknown;
}

/** What NotificationInbox listens to on a MagpieClient. */
export interface NotificationSource {
  on(event: 'frame', fn: (f: { type: string; [key: string]: unknown }) => void): () => void;
  on(event: 'state', fn: (e: { state: string; previous: string }) => void): () => void;
}

/**
 * The user's notifications kept in step with the server: pulls from its cursor when the client
 * comes online, merges a live `notification` frame when it is the next ring slot or the next
 * feed seq of its service, and pulls otherwise. Pulls and merges run one at a time, in order.
 * Persist `cursor` (e.g. on the `notifications` event) and pass it back to resume: live merges
 * move it too, so a resumed inbox does not fetch them again.
 */
export class NotificationInbox {
  private readonly emitter: TypedEmitter<NotificationInboxEvents>;
  private readonly byId = new Map<string, Notification>();
  private cursorText: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly offs: (() => void)[] = [];
  private readonly max: number;

  constructor(
    private readonly api: NotificationsApi,
    opts: { cursor?: string; max?: number; onListenerError?: (err: unknown) => void } = {},
  ) {
    this.emitter = new TypedEmitter<NotificationInboxEvents>(opts.onListenerError);
    this.cursorText = opts.cursor;
    this.max = opts.max ?? 500;
  }

  on<K extends keyof NotificationInboxEvents>(event: K, fn: (payload: NotificationInboxEvents[K]) => void): () => void {
    return this.emitter.on(event, fn);
  }

  /** The position to resume from (opaque). */
  get cursor(): string | undefined {
    return this.cursorText;
  }

  /** Notifications held, newest first (at most `max`). */
  list(): Notification[] {
    return [...this.byId.values()].sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id));
  }

  attach(client: NotificationSource): () => void {
    this.offs.push(
      client.on('frame', (f) => {
        if (f.type === 'notification') this.enqueue(() => this.onLive(f.notification as Notification));
      }),
      client.on('state', (e) => {
        if (e.state === 'online') void this.sync();
      }),
    );
    return () => this.detach();
  }

  detach(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /** Pull every page after the cursor. */
  sync(): Promise<void> {
    return this.enqueue(() => this.pull());
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn).catch((err: unknown) => this.emitter.emit('error', err));
    this.chain = run;
    return run;
  }

  private async onLive(n: Notification): Promise<void> {
    if (this.byId.has(n.id)) return;
    // Merge without a pull only when the cursor proves nothing was missed: the frame is the next
    // ring slot, or the next feed seq of its service. The cursor then moves past it.
    const c = this.cursorText === undefined ? null : decodeCursor(this.cursorText);
    if (c && n.slot !== null && n.slot === c.r + 1) c.r = n.slot;
    else if (c && n.slot === null && n.feedSeq !== null && n.feedSeq === (c.f[n.service] ?? 0) + 1) c.f[n.service] = n.feedSeq;
    else return this.pull();
    this.cursorText = encodeCursor(c);
    this.merge([n]);
  }

  private async pull(): Promise<void> {
    for (;;) {
      const page = await this.api.page(this.cursorText, 100);
      this.cursorText = page.cursor;
      if (page.wrapped) this.emitter.emit('wrapped', { cursor: page.cursor });
      this.merge(page.notifications);
      if (!page.more) return;
    }
  }

  private merge(items: Notification[]): void {
    const fresh = items.filter((n) => !this.byId.has(n.id));
    for (const n of fresh) this.byId.set(n.id, n);
    if (this.byId.size > this.max) for (const n of this.list().slice(this.max)) this.byId.delete(n.id);
    if (fresh.length > 0) this.emitter.emit('notifications', fresh);
  }
}
