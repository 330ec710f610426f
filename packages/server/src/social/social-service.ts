import {
  MagpieError,
  type BlockEntry,
  type FriendEntry,
  type FriendRequestEntry,
  type Profile,
  type RelationChangesResult,
  type RelationResult,
  type RelationState,
  type SearchResult,
} from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { DirectMessagePolicy } from '../services/message-service.ts';
import type { ApplyOutcome, SocialStore } from './social-store.ts';
import { DirectGate } from './direct-gate.ts';
import type { RelationAction } from './relations.ts';

export type StrangerPolicy = 'allow' | 'friends_only';

export interface SocialOptions {
  /** Whether users who are not friends may send each other direct messages. Blocks apply either way. */
  strangerMessages: StrangerPolicy;
  /** Largest serialized `extra` of a profile, in bytes. */
  maxExtraBytes: number;
  /** Largest page of relation changes. */
  changesPageSize?: number;
  /**
   * Keep the relation of recently seen pairs in memory for the direct-message policy
   * (social/direct-gate.ts). Only on a single node: another node's changes would not be seen.
   */
  cacheDirectPolicy?: boolean;
}

export interface ProfileUpdate {
  nickname?: string;
  avatar?: string | null;
  extra?: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  next: string | null;
  version: number;
}

const DEFAULT_CHANGES_PAGE = 500;

/**
 * The social graph: profiles, search, friend requests, friends, blocks, the stranger policy
 * and the per-user relation change log. Every relation change is durable in the SocialStore
 * before it is published: each affected user's devices get a `relation {version, change}`
 * frame through the Bus, and a device that missed it pulls `changes(since)`.
 */
export class SocialService {
  private readonly pageSize: number;
  /** The direct-message policy and the order of relation changes against sends (direct-gate.ts). */
  readonly gate: DirectGate;

  constructor(
    private readonly store: SocialStore,
    private readonly bus: Bus,
    private readonly opts: SocialOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.pageSize = opts.changesPageSize ?? DEFAULT_CHANGES_PAGE;
    this.gate = new DirectGate((s, r) => store.directCheck(s, r), { friendsOnly: opts.strangerMessages === 'friends_only', cache: opts.cacheDirectPolicy ?? false });
  }

  async profile(userId: string): Promise<Profile> {
    const p = await this.store.getProfile(userId);
    if (!p) throw new MagpieError('not_found', 'no such user');
    return p;
  }

  /** Someone's profile and the viewer's relation towards them. */
  async userProfile(viewer: string, userId: string): Promise<{ profile: Profile; relation: RelationState }> {
    const profile = await this.profile(userId);
    const relation = viewer === userId ? 'none' : await this.store.relationOf(viewer, userId);
    return { profile, relation };
  }

  async updateProfile(userId: string, update: ProfileUpdate): Promise<Profile> {
    let extraJson: string | undefined;
    if (update.extra !== undefined) {
      extraJson = JSON.stringify(update.extra);
      const bytes = Buffer.byteLength(extraJson);
      if (bytes > this.opts.maxExtraBytes) throw new MagpieError('invalid', `extra is ${bytes} bytes; the limit is ${this.opts.maxExtraBytes}`);
    }
    const patch = {
      ...(update.nickname !== undefined ? { nickname: update.nickname } : {}),
      ...(update.avatar !== undefined ? { avatar: update.avatar } : {}),
      ...(extraJson !== undefined ? { extraJson } : {}),
    };
    const p = await this.store.updateProfile(userId, patch, this.now());
    if (!p) throw new MagpieError('not_found', 'no such user');
    return p;
  }

  /** Exact id or username (first page only), and a page of nickname-prefix matches. */
  async search(q: string, limit: number, cursor: string | undefined): Promise<SearchResult> {
    const after = cursor === undefined ? null : decodeSearchCursor(cursor);
    const exact = after ? [] : await this.store.findExact(q);
    const rows = await this.store.searchNickname(q, after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      exact,
      results: page.map(({ key: _key, ...summary }) => summary),
      next: rows.length > limit && last ? encodeSearchCursor(last.key, last.id) : null,
    };
  }

  request(actor: string, peer: string, greeting: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'request', greeting });
  }
  accept(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'accept' });
  }
  reject(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'reject' });
  }
  cancel(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'cancel' });
  }
  remove(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'remove' });
  }
  block(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'block' });
  }
  unblock(actor: string, peer: string): Promise<RelationResult> {
    return this.act(actor, peer, { type: 'unblock' });
  }

  private async act(actor: string, peer: string, action: RelationAction): Promise<RelationResult> {
    if (actor === peer) throw new MagpieError('invalid', 'that is you');
    // Sends of this pair already checked are appended first; later ones see the change.
    const out: ApplyOutcome = await this.gate.change(actor, peer, () => this.store.apply(actor, peer, action, this.now()));
    if (!out.ok) throw new MagpieError(out.error, out.reason);
    // Durable; now live to every device of each affected user (the actor's included).
    for (const { userId, change } of out.changes) {
      this.bus.publish({ type: 'deliver', userId, frame: JSON.stringify({ type: 'relation', version: change.version, change }) });
    }
    return { peer, state: out.state, version: out.version, duplicate: out.duplicate };
  }

  async friends(userId: string, after: string | undefined, limit: number): Promise<Page<FriendEntry>> {
    return pageOf(await this.store.listFriends(userId, after ?? null, limit + 1), limit);
  }

  async requests(userId: string, direction: 'incoming' | 'outgoing', after: string | undefined, limit: number): Promise<Page<FriendRequestEntry>> {
    return pageOf(await this.store.listRequests(userId, direction, after ?? null, limit + 1), limit);
  }

  async blocks(userId: string, after: string | undefined, limit: number): Promise<Page<BlockEntry>> {
    return pageOf(await this.store.listBlocks(userId, after ?? null, limit + 1), limit);
  }

  /**
   * What changed after `since`. `full` when `since` is below the retained log (or above the
   * user's version, e.g. a client of a reset server): reload the lists, then continue from
   * the version the lists report.
   */
  async changes(userId: string, since: number, limit?: number): Promise<RelationChangesResult> {
    const n = Math.min(limit ?? this.pageSize, this.pageSize);
    const page = await this.store.changesSince(userId, since, n);
    const full = { version: page.version, changes: [], more: false, full: true };
    if (since > page.version || since < page.floor) return full;
    const first = page.changes[0];
    // Belt and braces: the log must continue exactly at since + 1.
    if ((first && first.version !== since + 1) || (!first && since < page.version)) return full;
    const last = page.changes.at(-1)?.version ?? since;
    return { version: page.version, changes: page.changes, more: last < page.version, full: false };
  }

  /** The direct-message check for MessagingService.addDirectPolicy: blocks always, and the stranger policy. */
  readonly directPolicy: DirectMessagePolicy = (sender, recipient) => this.gate.check(sender, recipient);
}

function pageOf<T extends { user: { id: string } }>(p: { items: T[]; version: number }, limit: number): Page<T> {
  const items = p.items.slice(0, limit);
  return { items, next: p.items.length > limit ? (items.at(-1)?.user.id ?? null) : null, version: p.version };
}

function encodeSearchCursor(key: string, id: string): string {
  return Buffer.from(JSON.stringify([key, id])).toString('base64url');
}

function decodeSearchCursor(cursor: string): { key: string; id: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return { key: v[0], id: v[1] };
  } catch {
    // fall through
  }
  throw new MagpieError('invalid', 'bad search cursor');
}
