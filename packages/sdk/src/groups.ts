/**
 * REST wrapper of the group routes (`/api/groups…`, see docs/protocol.md "Groups and super
 * groups"). Every change the server makes is also a `system` message in the group, so the
 * chat shows it in seq order; these calls only ask for the change.
 */
import { AuthedRest, type RestApi, type TokenSource } from './rest.ts';

export type GroupRole = 'owner' | 'admin' | 'member';
export type JoinPolicy = 'open' | 'approval';
export type HistoryVisibility = 'since_join' | 'all';

export interface GroupInfo {
  conv: string;
  kind: 'group' | 'super';
  name: string;
  avatar: string;
  announcement: string;
  owner: string;
  joinPolicy: JoinPolicy;
  inviteNeedsApproval: boolean;
  muteAll: boolean;
  /** 'since_join': members read from their latest join on; 'all': the whole history. */
  historyVisibility: HistoryVisibility;
  dismissed: boolean;
  memberCount: number;
  maxMembers: number;
  lastSeq: number;
  createdAt: number;
}

export interface GroupMember {
  userId: string;
  role: GroupRole;
  /** Muted until this time (ms); 0 or past when not muted. */
  mutedUntil: number;
  joinedAt: number;
  joinedSeq: number;
}

export interface GroupJoinRequest {
  conv: string;
  userId: string;
  inviter: string | null;
  message: string;
  createdAt: number;
}

export interface CreateGroupInput {
  name: string;
  members?: string[];
  avatar?: string;
  joinPolicy?: JoinPolicy;
  inviteNeedsApproval?: boolean;
  historyVisibility?: HistoryVisibility;
}

export interface GroupPatch {
  name?: string;
  avatar?: string;
  announcement?: string;
  joinPolicy?: JoinPolicy;
  inviteNeedsApproval?: boolean;
  muteAll?: boolean;
  historyVisibility?: HistoryVisibility;
}


const seg = encodeURIComponent;

/** The group REST API; errors are MagpieClientError (`forbidden`, `muted`, `group_full`, `conflict`, …). */
export class GroupsApi {
  private readonly http: AuthedRest;

  constructor(rest: RestApi, token: TokenSource) {
    this.http = new AuthedRest(rest, token);
  }

  /** Create a group; the caller becomes its owner. */
  async create(input: CreateGroupInput): Promise<GroupInfo> {
    return (await this.http.req<{ group: GroupInfo }>('POST', '/api/groups', input)).group;
  }

  /** Groups whose name starts with the query (case-insensitive), or the group with that exact id. */
  async search(query: string, limit?: number): Promise<GroupInfo[]> {
    const qs = new URLSearchParams({ query });
    if (limit !== undefined) qs.set('limit', String(limit));
    return (await this.http.req<{ groups: GroupInfo[] }>('GET', `/api/groups?${qs}`)).groups;
  }

  async get(conv: string): Promise<GroupInfo> {
    return (await this.http.req<{ group: GroupInfo }>('GET', `/api/groups/${seg(conv)}`)).group;
  }

  /** One page of members, ordered by user id (members only). */
  async members(conv: string, q: { after?: string; limit?: number } = {}): Promise<GroupMember[]> {
    const qs = new URLSearchParams();
    if (q.after !== undefined) qs.set('after', q.after);
    if (q.limit !== undefined) qs.set('limit', String(q.limit));
    const s = qs.toString();
    return (await this.http.req<{ members: GroupMember[] }>('GET', `/api/groups/${seg(conv)}/members${s ? `?${s}` : ''}`)).members;
  }

  /** Every member (pages of 500). Meant for normal groups; super groups can be very large. */
  async allMembers(conv: string, max = 5000): Promise<GroupMember[]> {
    const out: GroupMember[] = [];
    for (;;) {
      const page = await this.members(conv, { ...(out.length ? { after: out[out.length - 1]!.userId } : {}), limit: 500 });
      out.push(...page);
      if (page.length < 500 || out.length >= max) return out;
    }
  }

  /**
   * Everyone a change notice at `seq` is about (create, invite, join, approve, kick), one page
   * ordered by user id. The notice itself names only the first 3 and says `count`.
   */
  async changeUsers(conv: string, seq: number, q: { after?: string; limit?: number } = {}): Promise<string[]> {
    const qs = new URLSearchParams();
    if (q.after !== undefined) qs.set('after', q.after);
    if (q.limit !== undefined) qs.set('limit', String(q.limit));
    const s = qs.toString();
    return (await this.http.req<{ users: string[] }>('GET', `/api/groups/${seg(conv)}/changes/${seq}/users${s ? `?${s}` : ''}`)).users;
  }

  /** The whole list of a change notice (pages of 1 000; at most 1 000 users per create/invite request). */
  async allChangeUsers(conv: string, seq: number, max = 100_000): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const page = await this.changeUsers(conv, seq, { ...(out.length ? { after: out[out.length - 1]! } : {}), limit: 1000 });
      out.push(...page);
      if (page.length < 1000 || out.length >= max) return out;
    }
  }

  /** Join: `joined: true` in an open group, otherwise an application waits for approval. */
  join(conv: string, message?: string): Promise<{ joined: boolean }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/join`, message === undefined ? {} : { message });
  }

  invite(conv: string, users: string[]): Promise<{ added: string[]; pending: string[] }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/invite`, { users });
  }

  async requests(conv: string): Promise<GroupJoinRequest[]> {
    return (await this.http.req<{ requests: GroupJoinRequest[] }>('GET', `/api/groups/${seg(conv)}/requests`)).requests;
  }

  approve(conv: string, user: string): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/requests/${seg(user)}/approve`);
  }

  reject(conv: string, user: string): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/requests/${seg(user)}/reject`);
  }

  kick(conv: string, users: string[]): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/kick`, { users });
  }

  leave(conv: string): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/leave`);
  }

  setRole(conv: string, user: string, role: 'admin' | 'member'): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/role`, { user, role });
  }

  /** Mute a member for durationMs (0 lifts the mute). */
  mute(conv: string, user: string, durationMs: number): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/mute`, { user, durationMs });
  }

  async update(conv: string, patch: GroupPatch): Promise<GroupInfo> {
    return (await this.http.req<{ group: GroupInfo }>('PATCH', `/api/groups/${seg(conv)}`, patch)).group;
  }

  transfer(conv: string, to: string): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/transfer`, { to });
  }

  dismiss(conv: string): Promise<{ ok: true }> {
    return this.http.req('POST', `/api/groups/${seg(conv)}/dismiss`);
  }
}
