import type { BlockEntry, FriendEntry, FriendRequestEntry, ProfileSummary, RelationState } from '@magpie/protocol';
import type { MagpieClient } from '../client.ts';
import { RelationSync, type SocialApi } from '../social.ts';
import { Directory } from './directory.ts';
import { ViewModel, errorText } from './view-model.ts';

export interface SearchRow extends ProfileSummary {
  relation: RelationState;
  /** This user. */
  self: boolean;
}

export interface ContactsState {
  friends: FriendEntry[];
  incoming: FriendRequestEntry[];
  outgoing: FriendRequestEntry[];
  /** Users this user blocked (they cannot message or befriend this user). */
  blocked: BlockEntry[];
  loaded: boolean;
  query: string;
  searching: boolean;
  results: SearchRow[];
  /** A short confirmation of the last action ("Request sent"). */
  notice: string | null;
  error: string | null;
}

export interface ContactsDeps {
  client: MagpieClient;
  social: SocialApi;
  directory: Directory;
}

/**
 * Contacts: friends, incoming and outgoing friend requests, and user search with the
 * relation to each result. Kept current by live `relation` frames (RelationSync) and a
 * pull after every reconnect.
 */
export class ContactsViewModel extends ViewModel<ContactsState> {
  readonly relations: RelationSync;
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;
  private searchSeq = 0;

  constructor(private readonly deps: ContactsDeps) {
    super({ friends: [], incoming: [], outgoing: [], blocked: [], loaded: false, query: '', searching: false, results: [], notice: null, error: null });
    this.relations = new RelationSync(deps.social);
    this.own(deps.client.on('frame', (f) => void this.relations.handleFrame(f)));
    this.own(this.relations.attach(deps.client));
    this.own(this.relations.on('change', () => this.scheduleReload()));
    this.own(this.relations.on('reset', () => this.scheduleReload()));
    this.own(() => {
      if (this.reloadTimer) clearTimeout(this.reloadTimer);
    });
    void this.relations.sync().catch(() => {});
    void this.reload();
  }

  /** Read the lists again. */
  async reload(): Promise<void> {
    const { social, directory } = this.deps;
    try {
      const [friends, incoming, outgoing, blocked] = await Promise.all([
        social.friends({ limit: 500 }),
        social.requests('incoming', { limit: 500 }),
        social.requests('outgoing', { limit: 500 }),
        social.blocks({ limit: 500 }),
      ]);
      directory.putUsers([...friends.items, ...incoming.items, ...outgoing.items, ...blocked.items].map((x) => x.user));
      const byName = (a: { user: ProfileSummary }, b: { user: ProfileSummary }) => (a.user.nickname || a.user.username).localeCompare(b.user.nickname || b.user.username);
      this.setState({ friends: friends.items.sort(byName), incoming: incoming.items, outgoing: outgoing.items, blocked: blocked.items.sort(byName), loaded: true, error: null });
      this.refreshResults();
    } catch (err) {
      this.setState({ loaded: true, error: errorText(err) });
    }
  }

  /** Search users by id, username or nickname prefix. */
  async search(query: string): Promise<void> {
    const q = query.trim();
    const mine = ++this.searchSeq;
    this.setState({ query, notice: null });
    if (!q) {
      this.setState({ results: [], searching: false });
      return;
    }
    this.setState({ searching: true });
    try {
      const r = await this.deps.social.search(q.slice(0, 64), { limit: 20 });
      if (mine !== this.searchSeq) return;
      const seen = new Set<string>();
      const all = [...r.exact, ...r.results].filter((u) => !seen.has(u.id) && seen.add(u.id));
      this.deps.directory.putUsers(all);
      const me = this.deps.client.userId;
      this.setState({ results: all.map((u) => ({ ...u, relation: this.relations.stateOf(u.id), self: u.id === me })), searching: false, error: null });
    } catch (err) {
      if (mine === this.searchSeq) this.setState({ searching: false, error: errorText(err) });
    }
  }

  requestFriend(userId: string, greeting?: string): Promise<void> {
    return this.act(() => this.deps.social.requestFriend(userId, greeting), (r) => (r.state === 'friend' ? 'You are now friends' : 'Friend request sent'));
  }

  accept(userId: string): Promise<void> {
    return this.act(() => this.deps.social.acceptRequest(userId), () => 'Friend request accepted');
  }

  reject(userId: string): Promise<void> {
    return this.act(() => this.deps.social.rejectRequest(userId), () => 'Friend request declined');
  }

  cancel(userId: string): Promise<void> {
    return this.act(() => this.deps.social.cancelRequest(userId), () => 'Friend request withdrawn');
  }

  removeFriend(userId: string): Promise<void> {
    return this.act(() => this.deps.social.removeFriend(userId), () => 'Friend removed');
  }

  block(userId: string): Promise<void> {
    return this.act(() => this.deps.social.block(userId), () => 'User blocked');
  }

  unblock(userId: string): Promise<void> {
    return this.act(() => this.deps.social.unblock(userId), () => 'User unblocked');
  }

  relationOf(userId: string): RelationState {
    return this.relations.stateOf(userId);
  }

  private async act<T extends { state: RelationState }>(fn: () => Promise<T>, notice: (r: T) => string): Promise<void> {
    try {
      const r = await fn();
      this.setState({ notice: notice(r), error: null });
      await this.relations.sync().catch(() => {});
      await this.reload();
    } catch (err) {
      this.setState({ error: errorText(err), notice: null });
    }
  }

  private refreshResults(): void {
    const s = this.getSnapshot();
    if (s.results.length === 0) return;
    this.setState({ results: s.results.map((r) => ({ ...r, relation: this.relations.stateOf(r.id) })) });
  }

  private scheduleReload(): void {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      void this.reload();
    }, 100);
  }
}
