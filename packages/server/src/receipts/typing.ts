import { MagpieError } from '@magpie/protocol';
import type { Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';

export interface TypingOptions {
  /** How long a client shows an indicator without a new one (ms). */
  ttlMs: number;
  /** At most one indicator per user and conversation per this interval; extra ones are dropped. */
  minIntervalMs: number;
  /** Groups above this member count get no typing indicators. */
  maxGroupMembers: number;
}

const MEMBER_CACHE_MS = 5000;

/**
 * Typing indicators: ephemeral (never stored), rate-limited per user and conversation,
 * delivered over the Bus to every device of the other members, expiring on the client.
 */
export class TypingRelay {
  private readonly last = new Map<string, number>();
  private readonly members = new Map<string, { at: number; users: string[] }>();
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly o: TypingOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Relay `userId` typing in `conv`; true when sent, false when rate-limited. Throws for non-members and large groups. */
  async typing(userId: string, conv: string): Promise<boolean> {
    const key = `${userId}\u0000${conv}`;
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev < this.o.minIntervalMs) {
      this.dropped++;
      return false;
    }
    const users = await this.membersOf(conv, t);
    if (!users.includes(userId)) throw new MagpieError('forbidden', 'not a member of this conversation');
    if (users.length > this.o.maxGroupMembers) throw new MagpieError('invalid', `typing indicators are for 1:1 chats and groups of at most ${this.o.maxGroupMembers} members`);
    if (this.last.size > 100_000) this.sweep(t);
    this.last.set(key, t);
    const frame = JSON.stringify({ type: 'typing', conv, user: userId, expiresIn: this.o.ttlMs });
    for (const u of users) if (u !== userId) this.bus.publish({ type: 'deliver', userId: u, frame });
    return true;
  }

  private async membersOf(conv: string, t: number): Promise<string[]> {
    const hit = this.members.get(conv);
    if (hit && t - hit.at < MEMBER_CACHE_MS) return hit.users;
    if (conv.startsWith('d:')) {
      const [, a, b] = conv.split(':');
      const users = [a!, b!];
      this.members.set(conv, { at: t, users });
      return users;
    }
    const c = await this.store.getConversation(conv);
    if (!c) throw new MagpieError('not_found', `no such conversation: ${conv}`);
    const g = await this.store.getGroup(conv);
    if (g && g.memberCount > this.o.maxGroupMembers) throw new MagpieError('invalid', `typing indicators are for 1:1 chats and groups of at most ${this.o.maxGroupMembers} members`);
    const users = await this.store.members(conv);
    if (this.members.size > 10_000) this.members.clear();
    this.members.set(conv, { at: t, users });
    return users;
  }

  private sweep(t: number): void {
    for (const [k, at] of this.last) if (t - at >= this.o.minIntervalMs) this.last.delete(k);
  }
}
