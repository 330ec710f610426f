import type { ProfileSummary } from '@magpie/protocol';
import type { GroupInfo, GroupsApi } from '../groups.ts';
import type { SocialApi } from '../social.ts';
import { ViewModel } from './view-model.ts';

export interface GroupSummary {
  conv: string;
  name: string;
  avatar: string;
  kind: 'group' | 'super';
  memberCount: number;
}

export interface DirectoryState {
  users: Readonly<Record<string, ProfileSummary>>;
  groups: Readonly<Record<string, GroupSummary>>;
}

/** Where a directory keeps its names between runs (web: localStorage). */
export interface DirectoryCache {
  load(): DirectoryState | null;
  save(state: DirectoryState): void;
}

export interface DirectoryDeps {
  social: SocialApi;
  groups: GroupsApi;
  cache?: DirectoryCache;
}

/**
 * Names and avatars of users and groups, fetched once on demand and shared by every view
 * model (conversation titles, message senders, member lists). Reading a name that is not
 * known yet returns a fallback and starts a fetch; subscribers hear when it arrives.
 */
export class Directory extends ViewModel<DirectoryState> {
  private readonly pendingUsers = new Set<string>();
  private readonly pendingGroups = new Set<string>();
  /** Names whose fetch failed (offline): asked again after 30 s, or at once by `retryFailed`. */
  private readonly failedUsers = new Set<string>();
  private readonly failedGroups = new Set<string>();
  private saveTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly deps: DirectoryDeps) {
    super(deps.cache?.load() ?? { users: {}, groups: {} });
    this.own(() => {
      if (this.saveTimer) clearTimeout(this.saveTimer);
    });
  }

  user(id: string): ProfileSummary | undefined {
    const u = this.getSnapshot().users[id];
    if (!u) this.fetchUser(id);
    return u;
  }

  /** Nickname, else username, else a short id (and a fetch is started). */
  userName(id: string): string {
    const u = this.user(id);
    return u ? u.nickname || u.username : id.length > 10 ? `${id.slice(0, 8)}…` : id;
  }

  group(conv: string): GroupSummary | undefined {
    const g = this.getSnapshot().groups[conv];
    if (!g) this.fetchGroup(conv);
    return g;
  }

  groupName(conv: string): string {
    return this.group(conv)?.name ?? 'Group';
  }

  /** Add what a list or search returned (no fetch needed). */
  putUsers(users: ProfileSummary[]): void {
    if (users.length === 0) return;
    const cur = this.getSnapshot().users;
    let changed = false;
    const next = { ...cur };
    for (const u of users) {
      const have = cur[u.id];
      if (have && have.nickname === u.nickname && have.username === u.username && have.avatar === u.avatar) continue;
      next[u.id] = { id: u.id, username: u.username, nickname: u.nickname, avatar: u.avatar };
      changed = true;
    }
    if (changed) this.update({ users: next });
  }

  putGroup(g: GroupInfo): void {
    const have = this.getSnapshot().groups[g.conv];
    const summary: GroupSummary = { conv: g.conv, name: g.name, avatar: g.avatar, kind: g.kind, memberCount: g.memberCount };
    if (have && JSON.stringify(have) === JSON.stringify(summary)) return;
    this.update({ groups: { ...this.getSnapshot().groups, [g.conv]: summary } });
  }

  /** Fetch a group again (after a rename or membership change). */
  refreshGroup(conv: string): Promise<void> {
    this.pendingGroups.delete(conv);
    return this.loadGroup(conv);
  }

  /**
   * Ask again for the names whose fetch failed (they wait 30 s otherwise): call it when the
   * connection is back, so a list shown offline with fallback names gets them at once.
   * Returns whether anything was retried; the next read of those names fetches them.
   */
  retryFailed(): boolean {
    const any = this.failedUsers.size > 0 || this.failedGroups.size > 0;
    for (const id of this.failedUsers) this.pendingUsers.delete(id);
    for (const conv of this.failedGroups) this.pendingGroups.delete(conv);
    this.failedUsers.clear();
    this.failedGroups.clear();
    if (any) this.setState({ users: { ...this.getSnapshot().users } });
    return any;
  }

  /** Write the names to the cache now (the page is going away: the debounced save would be lost). */
  flush(): void {
    if (!this.saveTimer) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    this.deps.cache?.save(this.getSnapshot());
  }

  private fetchUser(id: string): void {
    if (this.pendingUsers.has(id) || this.disposed) return;
    this.pendingUsers.add(id);
    this.deps.social.userProfile(id).then(
      ({ profile }) => this.putUsers([{ id: profile.id, username: profile.username, nickname: profile.nickname, avatar: profile.avatar }]),
      () => {
        this.failedUsers.add(id);
        setTimeout(() => {
          if (this.failedUsers.delete(id)) this.pendingUsers.delete(id);
        }, 30_000);
      },
    );
  }

  private fetchGroup(conv: string): void {
    if (this.pendingGroups.has(conv) || this.disposed) return;
    void this.loadGroup(conv);
  }

  private async loadGroup(conv: string): Promise<void> {
    this.pendingGroups.add(conv);
    try {
      this.putGroup(await this.deps.groups.get(conv));
    } catch {
      this.failedGroups.add(conv);
      setTimeout(() => {
        if (this.failedGroups.delete(conv)) this.pendingGroups.delete(conv);
      }, 30_000);
    }
  }

  private update(patch: Partial<DirectoryState>): void {
    this.setState(patch);
    const cache = this.deps.cache;
    if (cache && !this.saveTimer) {
      this.saveTimer = setTimeout(() => {
        this.saveTimer = null;
        cache.save(this.getSnapshot());
      }, 200);
    }
  }
}
