import type { MagpieClient } from '../client.ts';
import type { CreateGroupInput, GroupInfo, GroupJoinRequest, GroupMember, GroupPatch, GroupRole, GroupsApi } from '../groups.ts';
import { Directory } from './directory.ts';
import { ViewModel, errorText } from './view-model.ts';

export interface MemberRow extends GroupMember {
  name: string;
  username: string;
  /** Muted right now (mutedUntil in the future). */
  muted: boolean;
  self: boolean;
  /** What this user may do to this member. */
  canKick: boolean;
  canMute: boolean;
  canSetRole: boolean;
}

export interface GroupState {
  conv: string;
  info: GroupInfo | null;
  members: MemberRow[];
  myRole: GroupRole | null;
  /** Owner or admin: may edit the group and manage members. */
  canManage: boolean;
  requests: GroupJoinRequest[];
  loading: boolean;
  busy: boolean;
  notice: string | null;
  error: string | null;
}

export interface GroupDeps {
  client: MagpieClient;
  groups: GroupsApi;
  directory: Directory;
  now?: () => number;
}

const RANK: Record<GroupRole, number> = { owner: 3, admin: 2, member: 1 };

/**
 * A group's info and members with the admin actions this user may take (kick, mute,
 * roles, announcement, name, mute-all, join requests). Every change the server makes is a
 * system message in the group; the view reloads when one arrives.
 */
export class GroupViewModel extends ViewModel<GroupState> {
  /** Create a group with these members; the caller becomes its owner. */
  static async create(deps: Pick<GroupDeps, 'groups' | 'directory'>, input: CreateGroupInput): Promise<GroupInfo> {
    const g = await deps.groups.create(input);
    deps.directory.putGroup(g);
    return g;
  }

  private raw: GroupMember[] = [];
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly deps: GroupDeps,
    conv: string,
  ) {
    super({ conv, info: null, members: [], myRole: null, canManage: false, requests: [], loading: true, busy: false, notice: null, error: null });
    this.own(
      deps.client.on('message', (m) => {
        if (m.conv === conv && m.kind === 'system') this.scheduleReload();
      }),
    );
    this.own(deps.directory.subscribe(() => this.rebuild()));
    this.own(() => {
      if (this.reloadTimer) clearTimeout(this.reloadTimer);
    });
    void this.reload();
  }

  async reload(): Promise<void> {
    const { groups, directory } = this.deps;
    const conv = this.getSnapshot().conv;
    try {
      const info = await groups.get(conv);
      directory.putGroup(info);
      this.raw = info.dismissed ? [] : await groups.allMembers(conv, 2000).catch(() => []);
      this.setState({ info, loading: false, error: null });
      this.rebuild();
      if (this.getSnapshot().canManage) this.setState({ requests: await groups.requests(conv).catch(() => []) });
    } catch (err) {
      this.setState({ loading: false, error: errorText(err) });
    }
  }

  invite(users: string[]): Promise<void> {
    return this.act(async () => {
      const r = await this.deps.groups.invite(this.conv, users);
      return r.pending.length ? `Invitation waits for approval (${r.pending.length})` : 'Invited';
    });
  }

  kick(user: string): Promise<void> {
    return this.act(async () => (await this.deps.groups.kick(this.conv, [user]), 'Removed from the group'));
  }

  setRole(user: string, role: 'admin' | 'member'): Promise<void> {
    return this.act(async () => (await this.deps.groups.setRole(this.conv, user, role), role === 'admin' ? 'Made an admin' : 'Admin rights removed'));
  }

  mute(user: string, durationMs: number): Promise<void> {
    return this.act(async () => (await this.deps.groups.mute(this.conv, user, durationMs), durationMs > 0 ? 'Muted' : 'Unmuted'));
  }

  update(patch: GroupPatch): Promise<void> {
    return this.act(async () => {
      this.deps.directory.putGroup(await this.deps.groups.update(this.conv, patch));
      return 'Saved';
    });
  }

  setAnnouncement(text: string): Promise<void> {
    return this.update({ announcement: text });
  }

  rename(name: string): Promise<void> {
    return this.update({ name });
  }

  approve(user: string): Promise<void> {
    return this.act(async () => (await this.deps.groups.approve(this.conv, user), 'Approved'));
  }

  reject(user: string): Promise<void> {
    return this.act(async () => (await this.deps.groups.reject(this.conv, user), 'Declined'));
  }

  transfer(to: string): Promise<void> {
    return this.act(async () => (await this.deps.groups.transfer(this.conv, to), 'Ownership transferred'));
  }

  leave(): Promise<void> {
    return this.act(async () => (await this.deps.groups.leave(this.conv), 'You left the group'));
  }

  dismiss(): Promise<void> {
    return this.act(async () => (await this.deps.groups.dismiss(this.conv), 'Group dismissed'));
  }

  private get conv(): string {
    return this.getSnapshot().conv;
  }

  private async act(fn: () => Promise<string>): Promise<void> {
    this.setState({ busy: true, notice: null, error: null });
    try {
      const notice = await fn();
      this.setState({ notice });
      await this.reload();
    } catch (err) {
      this.setState({ error: errorText(err) });
    } finally {
      this.setState({ busy: false });
    }
  }

  private scheduleReload(): void {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      void this.reload();
    }, 150);
  }

  private rebuild(): void {
    const me = this.deps.client.userId;
    const now = (this.deps.now ?? Date.now)();
    const dir = this.deps.directory;
    const mine = this.raw.find((m) => m.userId === me)?.role ?? null;
    const myRank = mine ? RANK[mine] : 0;
    const members = this.raw
      .map((m): MemberRow => {
        const u = dir.user(m.userId);
        const over = myRank >= 2 && RANK[m.role] < myRank && m.userId !== me;
        return {
          ...m,
          name: u ? u.nickname || u.username : m.userId,
          username: u?.username ?? '',
          muted: m.mutedUntil > now,
          self: m.userId === me,
          canKick: over,
          canMute: over,
          canSetRole: mine === 'owner' && m.userId !== me,
        };
      })
      .sort((a, b) => RANK[b.role] - RANK[a.role] || a.name.localeCompare(b.name));
    this.setState({ members, myRole: mine, canManage: myRank >= 2 && !this.getSnapshot().info?.dismissed });
  }
}
