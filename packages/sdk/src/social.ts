/**
 * The social graph in the SDK: `SocialApi` (REST: profiles, search, friend requests,
 * friends, blocks, the relation change log) and `RelationSync`, which keeps a device's view
 * of its relations current from live `relation` frames and `changes?since=V` pulls.
 * Only types are imported from @magpie/protocol (no zod in a browser bundle).
 */
import type {
  BlockEntry,
  FriendEntry,
  FriendRequestEntry,
  Profile,
  RelationChange,
  RelationChangeKind,
  RelationChangesResult,
  RelationResult,
  RelationState,
  SearchResult,
} from '@magpie/protocol';
import { TypedEmitter } from './emitter.ts';
import { MagpieClientError, toClientError } from './errors.ts';
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

export type { BlockEntry, FriendEntry, FriendRequestEntry, Profile, ProfileSummary, RelationChange, RelationChangeKind, RelationChangesResult, RelationResult, RelationState, SearchResult } from '@magpie/protocol';

/** The server frame `relation`: one change of this user's relations; `version` equals `change.version`. */
export interface RelationFrame {
  type: 'relation';
  version: number;
  change: RelationChange;
}

export interface ProfilePatch {
  nickname?: string;
  /** An http(s) URL; null clears it. */
  avatar?: string | null;
  /** App-defined JSON object (the server limits its size, default 4 KiB). */
  extra?: Record<string, unknown>;
}

export interface ListPage<T> {
  items: T[];
  /** Cursor of the next page (`after`), or null on the last page. */
  next: string | null;
  /** The user's relation version when the page was read. */
  version: number;
}

export interface PageQuery {
  after?: string;
  limit?: number;
}

/** Copies of the protocol's enums (test/social.test.ts checks them against @magpie/protocol). */
export const RELATION_STATE_VALUES: readonly RelationState[] = ['none', 'friend', 'outgoing', 'incoming', 'blocked'];
export const RELATION_CHANGE_KIND_VALUES: readonly RelationChangeKind[] = [
  'request_sent',
  'request_received',
  'request_accepted',
  'friend_added',
  'request_rejected',
  'request_cancelled',
  'friend_removed',
  'blocked',
  'unblocked',
];
const STATES: ReadonlySet<string> = new Set(RELATION_STATE_VALUES);
const KINDS: ReadonlySet<string> = new Set(RELATION_CHANGE_KIND_VALUES);

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

/** True for a well-formed relation change. */
export function isRelationChange(x: unknown): x is RelationChange {
  if (!x || typeof x !== 'object') return false;
  const c = x as Record<string, unknown>;
  return (
    isInt(c.version) &&
    c.version >= 1 &&
    typeof c.peer === 'string' &&
    typeof c.kind === 'string' &&
    KINDS.has(c.kind) &&
    typeof c.state === 'string' &&
    STATES.has(c.state) &&
    (c.greeting === undefined || typeof c.greeting === 'string') &&
    isInt(c.time)
  );
}

/** The frame as a typed `RelationFrame`, or null when it is not a well-formed `relation` frame. */
export function parseRelationFrame(frame: unknown): RelationFrame | null {
  if (!frame || typeof frame !== 'object') return null;
  const f = frame as Record<string, unknown>;
  if (f.type !== 'relation' || !isInt(f.version) || !isRelationChange(f.change) || f.change.version !== f.version) return null;
  return { type: 'relation', version: f.version, change: f.change };
}


function qs(params: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

/**
 * REST API of the social graph. Every call is authenticated with the token (a string, or a
 * function returning the current one); errors are MagpieClientError with the server's code
 * (`invalid`, `not_found`, `forbidden`, `conflict`, `unauthorized`, …) and HTTP status.
 */
export class SocialApi {
  private readonly http: AuthedRest;

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  /** Own profile. */
  async profile(): Promise<Profile> {
    return (await this.http.req<{ profile: Profile }>('GET', '/api/profile')).profile;
  }

  /** Update own profile; fields left out keep their value. */
  async updateProfile(patch: ProfilePatch): Promise<Profile> {
    return (await this.http.req<{ profile: Profile }>('PATCH', '/api/profile', patch)).profile;
  }

  /** Someone's profile and this user's relation towards them. */
  userProfile(userId: string): Promise<{ profile: Profile; relation: RelationState }> {
    return this.http.req('GET', `/api/users/${seg(userId)}/profile`);
  }

  /** Exact id or username (`exact`, first page only) and nickname-prefix matches, case-insensitive, paged by `cursor`. */
  search(q: string, opts: { limit?: number; cursor?: string } = {}): Promise<SearchResult> {
    return this.http.req('GET', `/api/users/search${qs({ q, limit: opts.limit, cursor: opts.cursor })}`);
  }

  /** Send a friend request (idempotent while pending; accepts theirs when they asked first). */
  requestFriend(userId: string, greeting?: string): Promise<RelationResult> {
    return this.http.req('POST', '/api/friends/requests', greeting === undefined ? { to: userId } : { to: userId, greeting });
  }

  acceptRequest(fromUserId: string): Promise<RelationResult> {
    return this.http.req('POST', `/api/friends/requests/${seg(fromUserId)}/accept`);
  }

  rejectRequest(fromUserId: string): Promise<RelationResult> {
    return this.http.req('POST', `/api/friends/requests/${seg(fromUserId)}/reject`);
  }

  /** Withdraw own pending request. */
  cancelRequest(toUserId: string): Promise<RelationResult> {
    return this.http.req('DELETE', `/api/friends/requests/${seg(toUserId)}`);
  }

  removeFriend(userId: string): Promise<RelationResult> {
    return this.http.req('DELETE', `/api/friends/${seg(userId)}`);
  }

  /** Block (idempotent): ends a friendship and drops pending requests; the user can no longer message or request. */
  block(userId: string): Promise<RelationResult> {
    return this.http.req('PUT', `/api/blocks/${seg(userId)}`);
  }

  unblock(userId: string): Promise<RelationResult> {
    return this.http.req('DELETE', `/api/blocks/${seg(userId)}`);
  }

  friends(q: PageQuery = {}): Promise<ListPage<FriendEntry>> {
    return this.http.req('GET', `/api/friends${qs({ after: q.after, limit: q.limit })}`);
  }

  requests(direction: 'incoming' | 'outgoing', q: PageQuery = {}): Promise<ListPage<FriendRequestEntry>> {
    return this.http.req('GET', `/api/friends/requests${qs({ direction, after: q.after, limit: q.limit })}`);
  }

  blocks(q: PageQuery = {}): Promise<ListPage<BlockEntry>> {
    return this.http.req('GET', `/api/blocks${qs({ after: q.after, limit: q.limit })}`);
  }

  /** Relation changes after `since`, oldest first; see RelationChangesResult for `more` and `full`. */
  changes(since: number, limit?: number): Promise<RelationChangesResult> {
    return this.http.req('GET', `/api/relations/changes${qs({ since, limit })}`);
  }
}

export interface RelationSyncEvents {
  /** One change was applied (live or pulled), in version order. */
  change: { change: RelationChange; previous: RelationState };
  /** The whole view was rebuilt from the lists (first load, or the log no longer reached back far enough). */
  reset: { version: number; relations: ReadonlyMap<string, RelationState> };
  error: MagpieClientError;
}

export interface RelationSyncOptions {
  /** A persisted view to continue from; with none, the first `sync()` loads the lists. */
  version?: number;
  relations?: Iterable<[string, RelationState]>;
  /** Page size of list loads. */
  pageSize?: number;
  onListenerError?: (err: unknown, event: keyof RelationSyncEvents) => void;
}

/** Anything with the MagpieClient `state` event (kept structural so this file does not depend on the client). */
export interface StateSource {
  on(event: 'state', fn: (e: { state: string; previous: string }) => void): () => void;
}

/**
 * A device's view of its relations (peer → state) at a version. Changes are applied strictly
 * in version order: a `relation` frame at local+1 is applied at once, an older one is
 * ignored, a newer one (a gap: a frame was missed) triggers a pull of `changes?since=local`.
 * When the server answers `full`, the view is rebuilt from the lists and the changes since
 * the version of the first list page are replayed on top. Pulls run one at a time.
 */
export class RelationSync {
  private readonly emitter: TypedEmitter<RelationSyncEvents>;
  private readonly map = new Map<string, RelationState>();
  private local: number;
  private loaded: boolean;
  private running: Promise<void> | null = null;
  private again = false;
  private readonly pageSize: number;

  constructor(
    private readonly api: SocialApi,
    opts: RelationSyncOptions = {},
  ) {
    this.emitter = new TypedEmitter<RelationSyncEvents>(opts.onListenerError);
    this.local = opts.version ?? 0;
    this.loaded = opts.version !== undefined;
    for (const [peer, state] of opts.relations ?? []) if (state !== 'none') this.map.set(peer, state);
    this.pageSize = opts.pageSize ?? 200;
  }

  on<K extends keyof RelationSyncEvents>(event: K, fn: (payload: RelationSyncEvents[K]) => void): () => void {
    return this.emitter.on(event, fn);
  }

  /** The version of the view: every change up to it is applied. */
  get version(): number {
    return this.local;
  }

  stateOf(peer: string): RelationState {
    return this.map.get(peer) ?? 'none';
  }

  /** Peers with a relation other than `none`. */
  get relations(): ReadonlyMap<string, RelationState> {
    return this.map;
  }

  /** Peers in one state (e.g. 'friend', 'incoming'). */
  peers(state: RelationState): string[] {
    return [...this.map].filter(([, s]) => s === state).map(([p]) => p);
  }

  /**
   * Feed any server frame; returns true when it was a `relation` frame. Applies it when it is
   * the next version, ignores it when already applied, pulls when versions were skipped.
   */
  handleFrame(frame: unknown): boolean {
    const f = parseRelationFrame(frame);
    if (!f) return false;
    if (!this.loaded || f.version > this.local + 1) void this.sync().catch(() => {});
    else if (f.version === this.local + 1) this.apply(f.change);
    return true;
  }

  /** Pull after every (re)connect of `client` (a MagpieClient): what changed while offline. Returns the function that detaches. */
  attach(client: StateSource): () => void {
    return client.on('state', (e) => {
      if (e.state === 'online') void this.sync().catch(() => {});
    });
  }

  /**
   * Bring the view up to date: the changes since the local version, page by page, or a
   * rebuild from the lists when the log does not reach back (or nothing was loaded yet).
   * Concurrent calls share one run; a call during a run makes it go around once more.
   */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      try {
        do {
          this.again = false;
          await (this.loaded ? this.pull() : this.reload());
        } while (this.again);
      } catch (err) {
        const e = toClientError(err);
        this.emitter.emit('error', e);
        throw e;
      } finally {
        this.running = null;
      }
    })();
    this.running = run;
    return run;
  }

  private async pull(): Promise<void> {
    for (;;) {
      const page = await this.api.changes(this.local);
      if (page.full) return this.reload();
      for (const c of page.changes) {
        if (c.version > this.local + 1) return this.reload(); // cannot happen with a sound server; recover anyway
        if (c.version === this.local + 1) this.apply(c);
      }
      if (!page.more || page.changes.length === 0) return;
    }
  }

  /** Rebuild from the lists, then replay the changes after the first page's version (silently), then `reset`. */
  private async reload(): Promise<void> {
    const next = new Map<string, RelationState>();
    let base: number | undefined;
    const load = async <T extends { user: { id: string } }>(fetch: (q: PageQuery) => Promise<ListPage<T>>, state: RelationState) => {
      let after: string | undefined;
      for (;;) {
        const page = await fetch(after === undefined ? { limit: this.pageSize } : { after, limit: this.pageSize });
        base ??= page.version;
        for (const item of page.items) next.set(item.user.id, state);
        if (!page.next) return;
        after = page.next;
      }
    };
    await load((q) => this.api.friends(q), 'friend');
    await load((q) => this.api.requests('incoming', q), 'incoming');
    await load((q) => this.api.requests('outgoing', q), 'outgoing');
    await load((q) => this.api.blocks(q), 'blocked');
    let version = base ?? 0;
    // Lists read later may already contain newer changes; replaying everything after the
    // first page's version in order ends each peer at its newest state.
    for (;;) {
      const page = await this.api.changes(version);
      if (page.full) throw new MagpieClientError('bad_response', 'relation log moved past the lists while reloading');
      for (const c of page.changes) {
        if (c.version !== version + 1) continue;
        if (c.state === 'none') next.delete(c.peer);
        else next.set(c.peer, c.state);
        version = c.version;
      }
      if (!page.more || page.changes.length === 0) break;
    }
    this.map.clear();
    for (const [p, s] of next) this.map.set(p, s);
    this.local = version;
    this.loaded = true;
    this.emitter.emit('reset', { version, relations: this.map });
  }

  private apply(c: RelationChange): void {
    const previous = this.stateOf(c.peer);
    if (c.state === 'none') this.map.delete(c.peer);
    else this.map.set(c.peer, c.state);
    this.local = c.version;
    this.emitter.emit('change', { change: c, previous });
  }
}
