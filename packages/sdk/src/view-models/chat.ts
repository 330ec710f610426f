import type { ConvEntry, ProfileSummary } from '@magpie/protocol';
import type { MagpieClient } from '../client.ts';
import type { GroupsApi } from '../groups.ts';
import type { LocalMessage, MessageWindow } from '../history.ts';
import { Directory } from './directory.ts';
import { dayKey, dayLabel, directConvId, findMentions, messageStatusText, messageText } from './format.ts';
import { ViewModel, errorText } from './view-model.ts';

export type ChatItem =
  | { type: 'day'; key: string; label: string }
  | { type: 'unread'; key: string }
  | { type: 'system'; key: string; seq: number | null; text: string; time: number }
  | {
      type: 'message';
      key: string;
      message: LocalMessage;
      text: string;
      senderName: string;
      own: boolean;
      /** First of a run of messages by the same sender (show the name in groups). */
      showSender: boolean;
      /** The message mentions this user (group `@name` / `@all` in its text). */
      mentionsMe: boolean;
      /** Own messages: "Sending…", "Sent", "Delivered", "Delivered to N" (normal groups), "Not sent"; others: ''. */
      status: string;
    };

export interface ChatState {
  /** Null for a direct chat whose conversation does not exist yet (first message not sent). */
  conv: string | null;
  kind: ConvEntry['kind'];
  peer: string | null;
  title: string;
  items: ChatItem[];
  /** The first load is running. */
  loading: boolean;
  loadingOlder: boolean;
  loadingNewer: boolean;
  /** Older messages exist (locally or on the server). */
  hasOlder: boolean;
  /** The window ends at the newest message; false after a jump to the oldest unread. */
  atLatest: boolean;
  /** Where the "new messages" divider sits, fixed when the chat was opened. */
  firstUnreadSeq: number | null;
  /** Unread messages above the loaded window (a "jump to the oldest unread" button shows when > 0). */
  unreadAbove: number;
  /** Whether this user can send here (false for a dismissed group). */
  muted: boolean;
  error: string | null;
}

export interface ChatDeps {
  client: MagpieClient;
  directory: Directory;
  groups?: GroupsApi;
}

export type ChatTarget = { conv: string } | { peer: string };

const PAGE = 30;

/**
 * One conversation as a chat: a window of messages that never spans a hole, paged older
 * (and newer after a jump), the jump to the oldest unread message, day separators, system
 * notices, the "new messages" divider, own messages with their state (sending → sent →
 * delivered, or failed with retry), and read marking while the chat is visible.
 */
export class ChatViewModel extends ViewModel<ChatState> {
  private conv: string | null;
  private readonly peer: string | null;
  private entry: ConvEntry | undefined;
  private msgs = new Map<string, LocalMessage>();
  private lo = Number.POSITIVE_INFINITY;
  private hi = 0;
  private visible = true;
  private unreadAtOpen = 0;
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private members: ProfileSummary[] | null = null;
  private started: Promise<void> | null = null;

  constructor(
    private readonly deps: ChatDeps,
    target: ChatTarget,
  ) {
    const me = deps.client.userId;
    const peer = 'peer' in target ? target.peer : null;
    const conv = 'conv' in target ? target.conv : me && peer ? directConvId(me, peer) : null;
    const kind: ConvEntry['kind'] = conv?.startsWith('d:') || peer ? 'direct' : 'group';
    super({
      conv,
      kind,
      peer: peer ?? (conv?.startsWith('d:') ? (conv.slice(2).split(':').find((u) => u !== me) ?? null) : null),
      title: '',
      items: [],
      loading: true,
      loadingOlder: false,
      loadingNewer: false,
      hasOlder: false,
      atLatest: true,
      firstUnreadSeq: null,
      unreadAbove: 0,
      muted: false,
      error: null,
    });
    this.conv = conv;
    this.peer = this.getSnapshot().peer;
    this.own(deps.client.on('message', (m) => this.onMessage(m)));
    this.own(
      deps.client.on('conversation', ({ conv: c, entry }) => {
        if (c !== this.conv) return;
        this.entry = entry ?? undefined;
        this.setState({ kind: entry?.kind ?? this.getSnapshot().kind, title: this.title() });
      }),
    );
    this.own(
      deps.client.on('state', ({ state }) => {
        if (state === 'online' && this.getSnapshot().atLatest) void this.reloadLatest();
      }),
    );
    this.own(deps.directory.subscribe(() => this.rebuild()));
    this.own(() => {
      // Leaving right after messages arrived still marks them read.
      if (this.readTimer) {
        clearTimeout(this.readTimer);
        this.readTimer = null;
        void this.markRead();
      }
    });
  }

  /** Load the newest messages (local first, then the server when the store has a hole). */
  start(): Promise<void> {
    this.started ??= this.open();
    return this.started;
  }

  private async open(): Promise<void> {
    const { client } = this.deps;
    if (this.conv) this.entry = await client.getConversation(this.conv);
    const e = this.entry;
    if (e) {
      this.unreadAtOpen = e.unread;
      this.setState({ kind: e.kind, firstUnreadSeq: e.unread > 0 ? e.oldestUnreadSeq : null });
    }
    this.setState({ title: this.title() });
    await this.reloadLatest();
    this.setState({ loading: false });
    this.scheduleRead();
  }

  /** Tell the chat whether the user can see it (read marking happens only while visible). */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.scheduleRead();
  }

  /** Page older messages (filling holes from the server). */
  async loadOlder(): Promise<void> {
    const s = this.getSnapshot();
    if (!this.conv || s.loadingOlder || !s.hasOlder) return;
    this.setState({ loadingOlder: true });
    try {
      const before = Number.isFinite(this.lo) ? this.lo : (this.entry?.lastSeq ?? 0) + 1;
      const w = await this.deps.client.loadHistory(this.conv, { before, limit: PAGE });
      this.addWindow(w);
      this.setState({ hasOlder: w.moreBefore, error: null });
    } catch (err) {
      this.setState({ error: errorText(err) });
    } finally {
      this.setState({ loadingOlder: false });
      this.rebuild();
    }
  }

  /** After a jump: page newer messages until the newest. */
  async loadNewer(): Promise<void> {
    const s = this.getSnapshot();
    if (!this.conv || s.atLatest || s.loadingNewer) return;
    this.setState({ loadingNewer: true });
    try {
      const w = await this.deps.client.loadHistory(this.conv, { after: this.hi, limit: PAGE });
      this.addWindow(w);
      this.setState({ atLatest: !w.moreAfter, error: null });
      if (!w.moreAfter) this.addPending();
    } catch (err) {
      this.setState({ error: errorText(err) });
    } finally {
      this.setState({ loadingNewer: false });
      this.rebuild();
      this.scheduleRead();
    }
  }

  /** Show the oldest unread message first (the window then pages newer with loadNewer). */
  async jumpToOldestUnread(): Promise<void> {
    const first = this.getSnapshot().firstUnreadSeq;
    if (!this.conv || first === null) return;
    if (first >= this.lo && first <= this.hi) return;
    this.setState({ loading: true });
    try {
      const w = await this.deps.client.loadHistory(this.conv, { after: first - 1, limit: PAGE });
      this.resetWindow();
      this.addWindow(w);
      this.setState({ atLatest: !w.moreAfter, hasOlder: w.moreBefore, error: null });
      if (!w.moreAfter) this.addPending();
    } catch (err) {
      this.setState({ error: errorText(err) });
    } finally {
      this.setState({ loading: false });
      this.rebuild();
    }
  }

  /** Back to the newest messages. */
  async jumpToLatest(): Promise<void> {
    if (this.getSnapshot().atLatest) return;
    this.resetWindow();
    await this.reloadLatest();
  }

  /** Send a text (groups: `@name` and `@all` become mentions). */
  async sendText(text: string): Promise<LocalMessage | undefined> {
    const t = text.trim();
    if (!t) return undefined;
    if (!this.getSnapshot().atLatest) await this.jumpToLatest();
    let mentions: string[] | 'all' | undefined;
    if (this.getSnapshot().kind !== 'direct' && t.includes('@')) mentions = findMentions(t, (await this.memberProfiles()).filter((m) => m.id !== this.deps.client.userId));
    const input = this.conv && (this.entry || !this.peer) ? { conv: this.conv } : { to: this.peer! };
    try {
      const m = await this.deps.client.send({ ...input, kind: 'text', body: { text: t }, ...(mentions ? { mentions } : {}) });
      this.setState({ error: null });
      return m;
    } catch (err) {
      this.setState({ error: errorText(err) });
      return undefined;
    }
  }

  /** Send again a message that failed (same clientMsgId: the server never stores it twice). */
  async retry(clientMsgId: string): Promise<void> {
    try {
      await this.deps.client.retry(clientMsgId);
    } catch (err) {
      this.setState({ error: errorText(err) });
    }
  }

  /** Keep a draft for this conversation (shared with the user's other devices). */
  async saveDraft(text: string): Promise<void> {
    if (!this.conv || !this.entry || (this.entry.draft ?? '') === text) return;
    try {
      await this.deps.client.updateConversation(this.conv, { draft: text });
    } catch {
      /* offline: the draft is not kept */
    }
  }

  /** Group members whose username or nickname starts with `prefix` (the text after an `@`), for a mention picker. */
  async mentionSuggestions(prefix: string, limit = 6): Promise<ProfileSummary[]> {
    if (this.getSnapshot().kind === 'direct') return [];
    const p = prefix.toLowerCase();
    const me = this.deps.client.userId;
    const members = (await this.memberProfiles()).map((m) => this.deps.directory.user(m.id) ?? m);
    return members.filter((m) => m.id !== me && (m.username.toLowerCase().startsWith(p) || m.nickname.toLowerCase().startsWith(p))).slice(0, limit);
  }

  get draft(): string {
    return this.entry?.draft ?? '';
  }

  // ------------------------------------------------------------ internals

  private async reloadLatest(): Promise<void> {
    const { client } = this.deps;
    if (!this.conv) {
      this.addPending();
      this.rebuild();
      return;
    }
    try {
      const local = await client.getMessages(this.conv, { limit: PAGE });
      this.resetWindow();
      this.addWindow(local);
      this.setState({ hasOlder: local.moreBefore, atLatest: true });
      this.rebuild();
      if ((client.state === 'online' || client.state === 'syncing') && (local.hasGapBefore || local.hasGapAfter) && (local.messages.length < PAGE || local.hasGapAfter)) {
        const w = await client.loadHistory(this.conv, { limit: PAGE });
        this.resetWindow();
        this.addWindow(w);
        this.setState({ hasOlder: w.moreBefore, error: null });
      }
      this.addPending();
      this.refreshCounts();
    } catch (err) {
      this.setState({ error: errorText(err) });
    }
    this.rebuild();
  }

  /**
   * Normal groups, online: re-read the newest page's delivered counts from the server (this
   * device may have been offline while members' devices stored our messages). The changed
   * messages come back as `message` events.
   */
  private refreshCounts(): void {
    const { client } = this.deps;
    if (!this.conv || this.getSnapshot().kind !== 'group' || client.state !== 'online') return;
    if (![...this.msgs.values()].some((m) => m.deliveredCount !== null)) return;
    void client.refreshDeliveredCounts(this.conv, { limit: PAGE }).catch(() => undefined);
  }

  private resetWindow(): void {
    this.msgs = new Map([...this.msgs].filter(([, m]) => m.seq === null));
    this.lo = Number.POSITIVE_INFINITY;
    this.hi = 0;
  }

  private addWindow(w: MessageWindow): void {
    for (const m of w.messages) {
      this.msgs.set(m.clientMsgId, m);
      if (m.seq !== null) {
        this.lo = Math.min(this.lo, m.seq);
        this.hi = Math.max(this.hi, m.seq);
      }
    }
  }

  private addPending(): void {
    for (const m of this.deps.client.outgoing()) if (this.belongs(m)) this.msgs.set(m.clientMsgId, m);
  }

  private belongs(m: LocalMessage): boolean {
    if (m.conv !== null && m.conv === this.conv) return true;
    return m.conv === null && this.peer !== null && m.to === this.peer;
  }

  private onMessage(m: LocalMessage): void {
    if (!this.belongs(m)) {
      // A direct chat's first message: the conversation id arrives with the server's copy.
      if (this.conv === null && this.peer && m.conv && m.to === this.peer) this.conv = m.conv;
      else return;
    }
    const have = this.msgs.get(m.clientMsgId);
    if (!have) {
      if (!this.getSnapshot().atLatest) return; // the user is reading older messages; jumpToLatest shows it
      if (m.seq !== null && this.hi > 0 && m.seq < this.lo) return;
    }
    this.msgs.set(m.clientMsgId, m);
    if (m.seq !== null) {
      this.lo = Math.min(this.lo, m.seq);
      this.hi = Math.max(this.hi, m.seq);
    }
    this.rebuild();
    if (!m.own) this.scheduleRead();
  }

  private scheduleRead(): void {
    if (this.readTimer || !this.visible || this.disposed) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      void this.markRead();
    }, 150);
  }

  private async markRead(): Promise<void> {
    const conv = this.conv;
    if (!conv || !this.visible || !this.getSnapshot().atLatest || (this.getSnapshot().loading && !this.disposed)) return;
    const e = this.entry ?? (await this.deps.client.getConversation(conv));
    const top = Math.max(this.hi, e?.lastSeq ?? 0);
    if (!e || top <= e.readSeq) return;
    if (e.unread === 0 && e.mentions === 0 && top <= e.readSeq) return;
    try {
      this.entry = await this.deps.client.markRead(conv, top);
    } catch {
      /* offline: marked on the next visit */
    }
  }

  private async memberProfiles(): Promise<ProfileSummary[]> {
    if (this.members) return this.members;
    if (!this.deps.groups || !this.conv) return [];
    try {
      const list = await this.deps.groups.allMembers(this.conv, 1000);
      const out: ProfileSummary[] = [];
      for (const m of list) {
        const u = this.deps.directory.user(m.userId);
        out.push(u ?? { id: m.userId, username: m.userId, nickname: '', avatar: null });
      }
      this.members = out;
      return out;
    } catch {
      return [];
    }
  }

  private title(): string {
    const s = this.getSnapshot();
    if (s.kind === 'direct') return s.peer ? this.deps.directory.userName(s.peer) : 'Chat';
    return this.conv ? this.deps.directory.groupName(this.conv) : 'Group';
  }

  private rebuild(): void {
    const me = this.deps.client.userId;
    const dir = this.deps.directory;
    const nameOf = (id: string) => (id === me ? 'you' : dir.userName(id));
    const list = [...this.msgs.values()].sort((a, b) => {
      if (a.seq !== null && b.seq !== null) return a.seq - b.seq;
      if (a.seq !== null) return -1;
      if (b.seq !== null) return 1;
      return a.time - b.time;
    });
    const s = this.getSnapshot();
    const myNames = me ? [dir.user(me)?.username, dir.user(me)?.nickname].filter((x): x is string => !!x).map((x) => `@${x.toLowerCase()}`) : [];
    const items: ChatItem[] = [];
    let day = '';
    let lastSender = '';
    let unreadShown = false;
    let loadedUnread = 0;
    for (const m of list) {
      const k = dayKey(m.time);
      if (k !== day) {
        day = k;
        items.push({ type: 'day', key: `day:${k}`, label: dayLabel(m.time) });
        lastSender = '';
      }
      if (s.firstUnreadSeq !== null && !unreadShown && m.seq !== null && m.seq >= s.firstUnreadSeq) {
        unreadShown = true;
        // Above the first unread message when it is loaded (and is not the conversation's first).
        if (m.seq > 1 && this.lo <= s.firstUnreadSeq) items.push({ type: 'unread', key: 'unread' });
      }
      if (s.firstUnreadSeq !== null && m.seq !== null && m.seq >= s.firstUnreadSeq && !m.own) loadedUnread++;
      if (m.kind === 'system') {
        items.push({ type: 'system', key: m.clientMsgId, seq: m.seq, text: messageText(m, nameOf), time: m.time });
        lastSender = '';
        continue;
      }
      const text = messageText(m, nameOf);
      const lower = text.toLowerCase();
      items.push({
        type: 'message',
        key: m.clientMsgId,
        message: m,
        text,
        senderName: m.sender === me ? 'You' : nameOf(m.sender),
        own: m.own,
        showSender: m.sender !== lastSender,
        mentionsMe: !m.own && s.kind !== 'direct' && (/(^|\s)@all\b/.test(lower) || myNames.some((n) => lower.includes(n))),
        status: messageStatusText(m),
      });
      lastSender = m.sender;
    }
    const unreadAbove = s.firstUnreadSeq !== null && this.lo > s.firstUnreadSeq ? Math.max(1, this.unreadAtOpen - loadedUnread) : 0;
    this.setState({ items, title: this.title(), unreadAbove, conv: this.conv });
  }
}
