import type { ConvEntry } from '@magpie/protocol';
import type { MagpieClient } from '../client.ts';
import { Directory } from './directory.ts';
import { messageText } from './format.ts';
import { fold } from './compose.ts';
import { ViewModel, errorText } from './view-model.ts';
import { isSubjectConversation, type SearchApi } from '../search.ts';

export interface ConversationRow {
  conv: string;
  kind: ConvEntry['kind'];
  /** Direct chats: the other user. */
  peer: string | null;
  title: string;
  /** "Name: text" for groups, the text for direct chats; the draft wins when there is one. */
  preview: string;
  /** Time of the last message, or null. */
  time: number | null;
  unread: number;
  mentions: number;
  pinned: boolean;
  muted: boolean;
  draft: string;
  lastSeq: number;
  oldestUnreadSeq: number | null;
  /** Subject conversations: the title of their business subject (an item, an order); null otherwise or until loaded. */
  subject: string | null;
}

/** A locally stored message whose text matches the list's search. */
export interface MessageHit {
  conv: string;
  /** The conversation's title. */
  title: string;
  seq: number;
  senderName: string;
  text: string;
  time: number;
}

export interface ConversationListState {
  rows: ConversationRow[];
  /** The search text ('' when not searching). */
  query: string;
  /** Conversations whose name matches the search (any script, case- and width-insensitive). */
  matches: ConversationRow[];
  /** Messages whose text matches (the newest first): the server's search when `search` is given, plus what this device holds. */
  hits: MessageHit[];
  searching: boolean;
  /** The first read of the local store finished (the list shows before the network). */
  loaded: boolean;
  /** Unread messages of conversations that are not muted (a tab badge). */
  totalUnread: number;
  error: string | null;
}

export interface ConversationListDeps {
  client: MagpieClient;
  directory: Directory;
  /** Server-side message search and subjects; without it the search covers this device's messages only and no subject is shown. */
  search?: SearchApi;
}

/**
 * The conversation list: pinned first, then by latest activity, with unread badges,
 * mention markers, pin and mute. It reads the local store first (so a reload shows the
 * list at once) and follows the client's `conversation` events after that.
 */
export class ConversationListViewModel extends ViewModel<ConversationListState> {
  private entries = new Map<string, ConvEntry>();
  private scheduled = false;
  private searchSeq = 0;
  /** Subject titles by conversation (null: none); a conversation absent here is not asked yet. */
  private readonly subjects = new Map<string, string | null>();

  constructor(private readonly deps: ConversationListDeps) {
    super({ rows: [], query: '', matches: [], hits: [], searching: false, loaded: false, totalUnread: 0, error: null });
    this.own(
      deps.client.on('conversation', ({ conv, entry, previous }) => {
        const m = entry?.lastMessage;
        if (m?.kind === 'system' && m.seq !== previous?.lastMessage?.seq && (m.body as { event?: string } | null)?.event === 'group_updated') void deps.directory.refreshGroup(conv);
        if (entry && !entry.deleted) this.entries.set(conv, entry);
        else this.entries.delete(conv);
        this.schedule();
      }),
    );
    this.own(deps.directory.subscribe(() => this.schedule()));
    void this.load();
  }

  /** Read the list from the local store again. */
  async load(): Promise<void> {
    try {
      const list = await this.deps.client.getConversations();
      this.entries = new Map(list.map((e) => [e.conv, e]));
      this.rebuild(true);
    } catch (err) {
      this.setState({ loaded: true, error: errorText(err) });
    }
  }

  /**
   * Search the chats: by name, and through the messages this device holds (the newest
   * `perChat` of each conversation). An empty query ends the search.
   */
  async search(query: string, perChat = 300, max = 50): Promise<void> {
    const mine = ++this.searchSeq;
    const q = fold(query.trim());
    if (!q) {
      this.setState({ query: '', matches: [], hits: [], searching: false });
      return;
    }
    this.setState({ query, matches: this.matching(q), searching: true });
    const me = this.deps.client.userId;
    const dir = this.deps.directory;
    const hits: MessageHit[] = [];
    for (const row of this.getSnapshot().rows) {
      try {
        const w = await this.deps.client.getMessages(row.conv, { limit: perChat });
        for (const m of w.messages) {
          if (m.kind !== 'text' || m.seq === null) continue;
          const text = messageText(m, (id) => dir.userName(id));
          if (fold(text).includes(q)) hits.push({ conv: row.conv, title: row.title, seq: m.seq, senderName: m.sender === me ? 'You' : dir.userName(m.sender), text, time: m.time });
        }
      } catch {
        /* a conversation that cannot be read is skipped */
      }
      if (mine !== this.searchSeq) return;
    }
    if (this.deps.search) {
      // The server holds what this device never loaded; offline, the local hits stay.
      try {
        const page = await this.deps.search.search(query.trim(), { limit: max });
        if (mine !== this.searchSeq) return;
        const titles = new Map(this.getSnapshot().rows.map((r) => [r.conv, r.title]));
        const seen = new Set(hits.map((h) => `${h.conv}:${h.seq}`));
        for (const h of page.hits) {
          if (seen.has(`${h.conv}:${h.seq}`)) continue;
          const title = titles.get(h.conv) ?? (h.conv.startsWith('d:') ? dir.userName(h.sender === me ? (h.conv.slice(2).split(':').find((u) => u !== me) ?? h.sender) : h.sender) : dir.groupName(h.conv));
          hits.push({ conv: h.conv, title, seq: h.seq, senderName: h.sender === me ? 'You' : dir.userName(h.sender), text: h.text, time: h.time });
        }
      } catch {
        /* offline or refused: the device's own hits stay */
      }
    }
    if (mine !== this.searchSeq) return;
    hits.sort((a, b) => b.time - a.time);
    this.setState({ hits: hits.slice(0, max), searching: false });
  }

  /** Load the subject titles of subject conversations not asked yet, then show them. */
  private loadSubjects(convs: string[]): void {
    const api = this.deps.search;
    if (!api) return;
    for (const conv of convs) {
      if (this.subjects.has(conv) || !isSubjectConversation(conv)) continue;
      this.subjects.set(conv, null);
      api.subject(conv).then(
        (s) => {
          if (!s) return;
          this.subjects.set(conv, s.title);
          this.schedule();
        },
        () => this.subjects.delete(conv),
      );
    }
  }

  private matching(q: string): ConversationRow[] {
    return this.getSnapshot().rows.filter((r) => fold(r.title).includes(q));
  }

  row(conv: string): ConversationRow | undefined {
    return this.getSnapshot().rows.find((r) => r.conv === conv);
  }

  pin(conv: string, pinned: boolean): Promise<void> {
    return this.update(conv, { pinned });
  }

  mute(conv: string, muted: boolean): Promise<void> {
    return this.update(conv, { muted });
  }

  /** Delete the conversation for this user (it comes back with the next message). */
  remove(conv: string): Promise<void> {
    return this.update(conv, { deleted: true });
  }

  async markRead(conv: string): Promise<void> {
    const e = this.entries.get(conv);
    if (!e || e.unread === 0) return;
    try {
      await this.deps.client.markRead(conv, e.lastSeq);
      this.setState({ error: null });
    } catch (err) {
      this.setState({ error: errorText(err) });
    }
  }

  private async update(conv: string, patch: { pinned?: boolean; muted?: boolean; deleted?: true }): Promise<void> {
    try {
      await this.deps.client.updateConversation(conv, patch);
      this.setState({ error: null });
    } catch (err) {
      this.setState({ error: errorText(err) });
      throw err;
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.rebuild(this.getSnapshot().loaded);
    });
  }

  private rebuild(loaded: boolean): void {
    const dir = this.deps.directory;
    const me = this.deps.client.userId;
    const nameOf = (id: string) => (id === me ? 'you' : dir.userName(id));
    const rows = [...this.entries.values()]
      .sort((a, b) => Number(b.pinned) - Number(a.pinned) || (b.lastMessage?.time ?? 0) - (a.lastMessage?.time ?? 0) || b.version - a.version)
      .map((e): ConversationRow => {
        const m = e.lastMessage;
        let preview = '';
        if (m) {
          const text = messageText(m, nameOf);
          preview = e.kind !== 'direct' && m.kind !== 'system' ? `${m.sender === me ? 'You' : nameOf(m.sender)}: ${text}` : text;
        }
        if (e.draft) preview = `Draft: ${e.draft}`;
        return {
          conv: e.conv,
          kind: e.kind,
          peer: e.peer,
          title: e.kind === 'direct' ? (e.peer ? dir.userName(e.peer) : 'Chat') : dir.groupName(e.conv),
          preview,
          time: m?.time ?? null,
          unread: e.unread,
          mentions: e.mentions,
          pinned: e.pinned,
          muted: e.muted,
          draft: e.draft,
          lastSeq: e.lastSeq,
          oldestUnreadSeq: e.oldestUnreadSeq,
          subject: this.subjects.get(e.conv) ?? null,
        };
      });
    this.loadSubjects(rows.map((r) => r.conv));
    const totalUnread = rows.reduce((n, r) => n + (r.muted ? 0 : r.unread), 0);
    this.setState({ rows, loaded, totalUnread });
    const q = this.getSnapshot().query;
    if (q) this.setState({ matches: this.matching(fold(q.trim())) });
  }
}
