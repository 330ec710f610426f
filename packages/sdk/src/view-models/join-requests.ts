import type { MagpieClient } from '../client.ts';
import { MagpieClientError } from '../errors.ts';
import type { GroupsApi } from '../groups.ts';
import { ViewModel } from './view-model.ts';

export interface JoinRequestsState {
  /** Pending join requests per group this user administers (groups with none are absent). */
  byConv: Readonly<Record<string, number>>;
  total: number;
}

export interface JoinRequestsDeps {
  client: MagpieClient;
  groups: GroupsApi;
  /**
   * Optional polling interval. Not needed with a server that sends `join_request` frames (the
   * default: no timer, a check on every reconnect and on each frame).
   */
  intervalMs?: number;
}

const RECHECK_EVENTS = new Set(['role_changed', 'owner_changed', 'member_approved', 'members_invited', 'member_joined', 'group_created']);

/**
 * Join requests waiting in the groups this user owns or administers, for badges: checked
 * on start, on every reconnect (frames missed while offline are not replayed), when a group
 * notice may change who decides, and when the server's `join_request` frame says one was filed
 * or handled. Groups where the user may not decide are skipped until their roles change.
 */
export class JoinRequestsViewModel extends ViewModel<JoinRequestsState> {
  private readonly notAdmin = new Set<string>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly deps: JoinRequestsDeps) {
    super({ byConv: {}, total: 0 });
    this.own(
      deps.client.on('state', ({ state }) => {
        if (state === 'online') void this.checkAll();
      }),
    );
    this.own(
      deps.client.on('message', (m) => {
        if (m.kind !== 'system' || !m.conv) return;
        const ev = (m.body as { event?: string } | null)?.event;
        if (ev && RECHECK_EVENTS.has(ev)) {
          this.notAdmin.delete(m.conv);
          void this.check(m.conv);
        }
      }),
    );
    this.own(
      deps.client.on('frame', (f) => {
        if (f.type !== 'join_request' || typeof f.conv !== 'string') return;
        this.notAdmin.delete(f.conv);
        void this.check(f.conv);
      }),
    );
    if (deps.intervalMs) this.timer = setInterval(() => void this.checkAll(), deps.intervalMs);
    this.own(() => {
      if (this.timer) clearInterval(this.timer);
    });
    if (deps.client.state === 'online') void this.checkAll();
  }

  /** Check one group again (after approving or declining there). */
  async check(conv: string): Promise<void> {
    if (this.notAdmin.has(conv) || this.disposed) return;
    try {
      const n = (await this.deps.groups.requests(conv)).length;
      this.set(conv, n);
    } catch (err) {
      if (err instanceof MagpieClientError && (err.code === 'forbidden' || err.code === 'not_found')) {
        this.notAdmin.add(conv);
        this.set(conv, 0);
      }
    }
  }

  /** Check every group in the conversation list (one run at a time). */
  checkAll(): Promise<void> {
    this.running ??= (async () => {
      try {
        if (this.deps.client.state !== 'online') return;
        for (const e of await this.deps.client.getConversations()) if (e.kind !== 'direct') await this.check(e.conv);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private set(conv: string, n: number): void {
    const cur = this.getSnapshot().byConv;
    if ((cur[conv] ?? 0) === n) return;
    const next = { ...cur };
    if (n > 0) next[conv] = n;
    else delete next[conv];
    this.setState({ byConv: next, total: Object.values(next).reduce((a, b) => a + b, 0) });
  }
}
