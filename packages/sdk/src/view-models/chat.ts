import { LIFECYCLE_EVENT_KINDS, LOCAL_HIDDEN_KIND, ReactionBook, type LifecycleApi, type LifecycleSync } from '../lifecycle.ts';
import type { ConvEntry, MediaKind, Message, ProfileSummary } from '@magpie/protocol';
import type { MediaApi, MediaUpload, UploadSource } from '../media.ts';
import type { MagpieClient } from '../client.ts';
import type { GroupMember, GroupsApi } from '../groups.ts';
import { MagpieClientError } from '../errors.ts';
import type { LocalMessage, MessageWindow } from '../history.ts';
import { Directory } from './directory.ts';
import { dayKey, dayLabel, directConvId, findMentions, messageStatusText, messageText } from './format.ts';
import { ViewModel, errorText } from './view-model.ts';
import { displayName, failureText, fold, matchMembers, sendBlockText, textBodyBytes } from './compose.ts';

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
      /** A failed own message: why, in words, and whether a retry can succeed. */
      failure: { text: string; canRetry: boolean } | null;
      /** Recalled: the bubble shows a notice in place of the content. */
      recalled: boolean;
      /** Edited (the text is the current one). */
      edited: boolean;
      /** The quoted message of a reply, as it is now (edited text, or "Message recalled"). */
      reply: { seq: number; senderName: string; text: string } | null;
      /** Reaction chips: emoji, count, whether this user reacted. */
      reactions: { emoji: string; count: number; mine: boolean }[];
      /** Own media sent from this device: the picked file's local (blob:) URL, shown until the server's copy loads. */
      localUrl: string | null;
    }
  | ChatUploadItem;

/** A media message still uploading: shown at once from the local file, with progress, pause and cancel. */
export interface ChatUploadItem {
  type: 'upload';
  key: string;
  kind: MediaKind;
  name: string;
  size: number;
  /** blob: URL of the picked file (browsers), null elsewhere. */
  localUrl: string | null;
  sent: number;
  total: number;
  /** `paused` with `stalled`: waiting for the network (resumes on reconnect). */
  state: 'uploading' | 'paused' | 'sending' | 'failed';
  stalled: boolean;
  /** Extra body fields the message will carry (voice: duration, waveform). */
  body: Record<string, unknown>;
  error: string | null;
  time: number;
}

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
  /** Why the composer is disabled ("You are muted for 12 min."), or null when sending is allowed. */
  sendBlocked: string | null;
  /** The group's announcement ('' when none, and in direct chats). */
  announcement: string;
  /** The composer's saved draft; null until it is known (the composer waits for it). */
  draft: string | null;
  /** The message a jump went to (a search hit), for the view to scroll to and mark; null otherwise. */
  highlightSeq: number | null;
  error: string | null;
}

/** Where a chat keeps drafts on this device (web: localStorage), so they survive being offline and reloads. */
export interface DraftStore {
  load(key: string): { text: string; synced: boolean } | null;
  save(key: string, draft: { text: string; synced: boolean } | null): void;
}

export interface ChatDeps {
  client: MagpieClient;
  /** Reply, forward, recall, edit, delete-for-me and reactions (issue 18); without it those actions are unavailable. */
  lifecycle?: { api: LifecycleApi; sync: LifecycleSync };
  directory: Directory;
  groups?: GroupsApi;
  drafts?: DraftStore;
  /** Media uploads and URLs (needed for sendMedia). */
  media?: MediaApi;
  now?: () => number;
}

/** A file for sendMedia: a Blob/File in browsers (its `type`, `name` and `size` are read). */
export interface MediaFileInput {
  file: UploadSource;
  kind: MediaKind;
  name?: string;
  size?: number;
  /** Extra body fields: caption (image/video), duration and waveform (voice). */
  body?: Record<string, unknown>;
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
  private rawMembers: GroupMember[] | null = null;
  private rights: { muteAll: boolean; dismissed: boolean; member: GroupMember | null } | null = null;
  private rightsTimer: ReturnType<typeof setTimeout> | null = null;
  private muteTick: ReturnType<typeof setInterval> | null = null;
  /** Mentions picked from the suggestions: inserted name → user id. */
  private picked = new Map<string, string>();
  private started: Promise<void> | null = null;
  private reactionBook: ReactionBook;
  /** Seq of the message the composer replies to, or null. */
  replyTo: number | null = null;
  private uploads = new Map<string, { item: ChatUploadItem; upload: MediaUpload }>();
  /** clientMsgId → the local blob URL of a media message sent from here. */
  private localUrls = new Map<string, string>();
  private uploadSeq = 0;

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
      sendBlocked: null,
      announcement: '',
      draft: null,
      highlightSeq: null,
      error: null,
    });
    this.conv = conv;
    this.peer = this.getSnapshot().peer;
    this.own(deps.client.on('message', (m) => this.onMessage(m)));
    this.reactionBook = new ReactionBook(me);
    if (deps.lifecycle) {
      const { sync } = deps.lifecycle;
      this.own(
        sync.on('changed', ({ conv: c, message }) => {
          if (c !== this.conv) return;
          for (const [key, m] of this.msgs) if (m.seq === message.seq) this.msgs.set(key, { ...m, kind: message.kind, body: message.body });
          this.rebuild();
        }),
      );
      this.own(
        sync.on('reactions', ({ conv: c, changes }) => {
          if (c !== this.conv) return;
          this.reactionBook.apply(changes);
          this.rebuild();
        }),
      );
    }
    this.own(
      deps.client.on('conversation', ({ conv: c, entry }) => {
        if (c !== this.conv) return;
        const first = !this.entry && !!entry;
        this.entry = entry ?? undefined;
        this.setState({ kind: entry?.kind ?? this.getSnapshot().kind, title: this.title() });
        // The entry arrived after the chat opened (a fresh tab syncing), or another device saved a draft.
        if (entry && this.getSnapshot().draft !== null && (first || entry.draft !== this.getSnapshot().draft) && !this.deps.drafts?.load(this.draftKey())) this.setState({ draft: entry.draft });
        if (first && this.getSnapshot().kind !== 'direct') void this.loadRights();
      }),
    );
    this.own(
      deps.client.on('state', ({ state }) => {
        if (state === 'online' && this.getSnapshot().atLatest) void this.reloadLatest();
        // Uploads the network stopped continue from the server's offset.
        if (state === 'online') for (const { upload } of this.uploads.values()) if (upload.stalled) upload.resume();
      }),
    );
    this.own(() => {
      // Leaving the chat does not stop its uploads (their messages still go out); the local URLs stay for them.
      this.uploads.clear();
    });
    this.own(deps.directory.subscribe(() => this.rebuild()));
    this.own(() => {
      if (this.rightsTimer) clearTimeout(this.rightsTimer);
      if (this.muteTick) clearInterval(this.muteTick);
    });
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
    this.setState({ title: this.title(), draft: this.initialDraft() });
    void this.loadRights();
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

  /**
   * Jump to one message (a search hit, a quoted message): the window becomes the messages
   * around it (`MagpieClient.historyAround`), `highlightSeq` names it; the window then pages
   * both ways (loadOlder / loadNewer) and `jumpToLatest` returns.
   */
  async jumpToSeq(seq: number): Promise<void> {
    if (!this.conv) return;
    await this.start();
    this.setState({ loading: true });
    try {
      const w = await this.deps.client.historyAround(this.conv, seq, { before: PAGE / 2, after: PAGE / 2 });
      this.resetWindow();
      this.addWindow(w);
      this.setState({ atLatest: !w.moreAfter, hasOlder: w.moreBefore, highlightSeq: seq, error: null });
      if (!w.moreAfter) this.addPending();
    } catch (err) {
      this.setState({ error: errorText(err) });
    } finally {
      this.setState({ loading: false });
      this.rebuild();
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
    const problem = this.getSnapshot().sendBlocked ?? this.checkText(t);
    if (problem) {
      this.setState({ error: problem });
      return undefined;
    }
    if (!this.getSnapshot().atLatest) await this.jumpToLatest();
    let mentions: string[] | 'all' | undefined;
    if (this.getSnapshot().kind !== 'direct' && t.includes('@')) mentions = this.mentionsIn(t, await this.memberProfiles());
    this.picked.clear();
    void this.saveDraft('');
    const input = this.conv && (this.entry || !this.peer) ? { conv: this.conv } : { to: this.peer! };
    try {
      const replyTo = this.replyTo;
      this.replyTo = null;
      const m = await this.deps.client.send({ ...input, kind: 'text', body: { text: t, ...(replyTo !== null ? { replyTo } : {}) }, ...(mentions ? { mentions } : {}) });
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

  /**
   * Upload a file and send it as a media message. The chat shows it at once (an `upload`
   * item with the local file and progress); once the upload is done the message is queued
   * and shows as an own message (sending → sent), still from the local file until the
   * server's thumbnail loads. Refused at once when sending is blocked or the file is larger
   * than `maxBytes` (the server's limit for the kind, from `GET /api/client-config`).
   */
  sendMedia(input: MediaFileInput, maxBytes?: number): ChatUploadItem | null {
    const media = this.deps.media;
    if (!media) throw new Error('ChatViewModel needs `media` to send media');
    const blocked = this.getSnapshot().sendBlocked;
    if (blocked) {
      this.setState({ error: blocked });
      return null;
    }
    const blob = typeof Blob !== 'undefined' && input.file instanceof Blob ? input.file : null;
    const name = input.name ?? (blob && 'name' in blob && typeof blob.name === 'string' ? blob.name : input.kind);
    const size = input.size ?? blob?.size ?? (input.file instanceof Uint8Array ? input.file.byteLength : 0);
    if (maxBytes !== undefined && size > maxBytes) {
      this.setState({ error: `The file is too large (${formatBytes(size)}; at most ${formatBytes(maxBytes)}).` });
      return null;
    }
    const key = `upload:${Date.now().toString(36)}:${++this.uploadSeq}`;
    const target = this.conv && (this.entry || !this.peer) ? { conv: this.conv } : { to: this.peer! };
    const pending = media.sendMedia(target, {
      kind: input.kind,
      file: input.file,
      filename: name,
      ...(input.body ? { body: input.body } : {}),
      onQueued: (m) => {
        if (pending.localUrl) this.localUrls.set(m.clientMsgId, pending.localUrl);
        this.uploads.delete(key);
        this.onMessage(m);
        this.rebuild();
      },
    });
    const item: ChatUploadItem = { type: 'upload', key, kind: input.kind, name, size, localUrl: pending.localUrl, sent: 0, total: size, state: 'uploading', stalled: false, body: input.body ?? {}, error: null, time: this.now() };
    const entry = { item, upload: pending.upload };
    this.uploads.set(key, entry);
    const update = (patch: Partial<ChatUploadItem>) => {
      const cur = this.uploads.get(key);
      if (!cur) return;
      cur.item = { ...cur.item, ...patch };
      this.rebuild();
    };
    pending.upload.on('progress', ({ sent, total }) => update({ sent, total }));
    pending.upload.on('state', (st) => {
      if (st === 'uploading' || st === 'paused') update({ state: st, stalled: pending.upload.stalled });
      else if (st === 'done') update({ state: 'sending' });
    });
    pending.message.catch((err: unknown) => {
      if (pending.upload.state === 'cancelled') return;
      update({ state: 'failed', error: errorText(err) });
    });
    if (!this.getSnapshot().atLatest) void this.jumpToLatest();
    this.rebuild();
    return item;
  }

  /** Show a problem the UI found itself (the microphone is blocked, …); null clears it. */
  setError(text: string | null): void {
    this.setState({ error: text });
  }

  /** Pause, resume or cancel an upload shown in the chat (cancel removes it and deletes it on the server). */
  pauseUpload(key: string): void {
    this.uploads.get(key)?.upload.pause();
  }

  resumeUpload(key: string): void {
    this.uploads.get(key)?.upload.resume();
  }

  async cancelUpload(key: string): Promise<void> {
    const u = this.uploads.get(key);
    if (!u) return;
    this.uploads.delete(key);
    this.rebuild();
    await u.upload.cancel();
    if (u.item.localUrl && typeof URL.revokeObjectURL === 'function') URL.revokeObjectURL(u.item.localUrl);
  }

  /** Send a location (no upload): `label` is what the user typed or the place's name. */
  async sendLocation(loc: { lat: number; lng: number; label?: string }): Promise<LocalMessage | undefined> {
    const label = loc.label?.trim();
    const fallback = label ? `[Location] ${label}` : `[Location] ${loc.lat.toFixed(5)}, ${loc.lng.toFixed(5)}`;
    return this.sendBody('location', { fallback, lat: loc.lat, lng: loc.lng, ...(label ? { label } : {}) });
  }

  /** Send a contact card (a user) or a group card; the recipient can add the friend or ask to join. */
  async sendCard(card: { card: 'user' | 'group'; id: string; name?: string }): Promise<LocalMessage | undefined> {
    const name = card.name?.slice(0, 64);
    return this.sendBody('card', { fallback: `[Contact card]${name ? ` ${name}` : ''}`, card: card.card, id: card.id, ...(name ? { name } : {}) });
  }

  private async sendBody(kind: string, body: Record<string, unknown>): Promise<LocalMessage | undefined> {
    const blocked = this.getSnapshot().sendBlocked;
    if (blocked) {
      this.setState({ error: blocked });
      return undefined;
    }
    if (!this.getSnapshot().atLatest) await this.jumpToLatest();
    const input = this.conv && (this.entry || !this.peer) ? { conv: this.conv } : { to: this.peer! };
    try {
      const m = await this.deps.client.send({ ...input, kind, body });
      this.setState({ error: null });
      return m;
    } catch (err) {
      this.setState({ error: errorText(err) });
      return undefined;
    }
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /**
   * Keep a draft for this conversation: on this device at once, and on the server (shared
   * with the user's other devices) when connected; an empty text deletes it.
   */
  async saveDraft(text: string): Promise<void> {
    const value = text.trim() ? text : '';
    const drafts = this.deps.drafts;
    const key = this.draftKey();
    const serverHas = this.entry?.draft ?? '';
    if (!this.conv || !this.entry) {
      drafts?.save(key, value ? { text: value, synced: false } : null);
      return;
    }
    if (serverHas === value) {
      drafts?.save(key, null);
      return;
    }
    drafts?.save(key, { text: value, synced: false });
    try {
      this.entry = await this.deps.client.updateConversation(this.conv, { draft: value });
      if ((drafts?.load(key)?.text ?? value) === value) drafts?.save(key, null);
    } catch {
      /* offline: kept on this device, sent with the next save */
    }
  }

  /** Why a text cannot be sent as it is (too long for the server), or null. */
  checkText(text: string): string | null {
    const max = this.deps.client.welcome?.limits?.maxMessageBytes;
    if (!max) return null;
    const n = textBodyBytes(text.trim());
    return n > max ? `This message is too long to send (${Math.ceil(n / 1024)} KB; the limit is ${Math.floor(max / 1024)} KB).` : null;
  }

  /**
   * Group members matching what follows an `@` (display name or username, any script:
   * prefix first, then a display name containing it), for a mention picker.
   */
  async mentionSuggestions(prefix: string, limit = 6): Promise<ProfileSummary[]> {
    if (this.getSnapshot().kind === 'direct') return [];
    const me = this.deps.client.userId;
    const members = (await this.memberProfiles()).map((m) => this.deps.directory.user(m.id) ?? m).filter((m) => m.id !== me);
    return matchMembers(members, prefix, limit);
  }

  /** The text to insert for a picked mention (`@Display Name `); the send carries the member's id. */
  pickMention(u: ProfileSummary): string {
    const name = displayName(u);
    this.picked.set(name, u.id);
    return `@${name} `;
  }

  /** @deprecated read `draft` from the state; kept for older views. */
  get draft(): string {
    return this.getSnapshot().draft ?? '';
  }

  // ------------------------------------------------------------ internals

  private draftKey(): string {
    return this.conv ?? `p:${this.peer ?? ''}`;
  }

  /** This device's unsynced draft wins (typed offline); otherwise the server's. */
  private initialDraft(): string {
    const local = this.deps.drafts?.load(this.draftKey());
    if (local && (!local.synced || !this.entry)) return local.text;
    return this.entry?.draft ?? '';
  }

  /** Ids of the members a group text mentions: picked from the suggestions, or typed as `@name`. */
  private mentionsIn(text: string, members: ProfileSummary[]): string[] | 'all' | undefined {
    const me = this.deps.client.userId;
    const found = findMentions(text, members.filter((m) => m.id !== me));
    if (found === 'all') return 'all';
    const ids = new Set(found ?? []);
    const t = fold(text);
    for (const [name, id] of this.picked) if (t.includes(`@${fold(name)}`) && id !== me) ids.add(id);
    return ids.size ? [...ids].slice(0, 100) : undefined;
  }

  /** Groups: the announcement, and whether (and why not) this user may send now. */
  private async loadRights(): Promise<void> {
    const groups = this.deps.groups;
    const conv = this.conv;
    if (!groups || !conv || this.getSnapshot().kind === 'direct' || this.disposed) return;
    try {
      const info = await groups.get(conv);
      this.deps.directory.putGroup(info);
      let members: GroupMember[] = [];
      try {
        members = await groups.allMembers(conv, 1000);
      } catch (err) {
        if (!(err instanceof MagpieClientError && (err.code === 'forbidden' || err.code === 'not_found'))) throw err;
      }
      this.rawMembers = members;
      this.members = null;
      const me = this.deps.client.userId;
      this.rights = { muteAll: info.muteAll, dismissed: info.dismissed, member: members.find((m) => m.userId === me) ?? null };
      this.setState({ announcement: info.announcement });
      this.applyRights();
    } catch {
      /* offline: the composer stays as it is; the server still refuses what it must */
    }
  }

  private applyRights(): void {
    const r = this.rights;
    if (!r) return;
    const now = (this.deps.now ?? Date.now)();
    const blocked = sendBlockText(r, now);
    this.setState({ sendBlocked: blocked, muted: blocked !== null });
    const mutedNow = !!r.member && r.member.mutedUntil > now;
    if (mutedNow && !this.muteTick) this.muteTick = setInterval(() => this.applyRights(), 15_000);
    if (!mutedNow && this.muteTick) {
      clearInterval(this.muteTick);
      this.muteTick = null;
    }
    this.rebuild();
  }

  private scheduleRights(): void {
    if (this.rightsTimer || this.disposed) return;
    this.rightsTimer = setTimeout(() => {
      this.rightsTimer = null;
      void this.loadRights();
    }, 150);
  }

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
      void this.loadReactions();
    } catch (err) {
      this.setState({ error: errorText(err) });
    }
    this.rebuild();
  }

  /** Reaction summaries of the loaded messages (events arriving later are applied on top). */
  private async loadReactions(): Promise<void> {
    const api = this.deps.lifecycle?.api;
    if (!api || !this.conv) return;
    const seqs = [...this.msgs.values()].map((m) => m.seq).filter((x): x is number => x !== null && x > 0).slice(-200);
    if (seqs.length === 0) return;
    try {
      const { reactions } = await api.reactions(this.conv, seqs);
      this.reactionBook.load(seqs, reactions);
      this.rebuild();
    } catch {
      // Reactions are decoration: the chat works without them.
    }
  }

  // --- lifecycle actions (reply, recall, edit, delete for me, react, forward) ---

  /** Quote message `seq` in the next text sent (null: no quote). */
  setReplyTo(seq: number | null): void {
    this.replyTo = seq;
    this.rebuild();
  }

  private async lifecycleCall<T>(fn: (api: LifecycleApi, conv: string) => Promise<T>): Promise<T | undefined> {
    const api = this.deps.lifecycle?.api;
    if (!api || !this.conv) return undefined;
    try {
      const r = await fn(api, this.conv);
      this.setState({ error: null });
      return r;
    } catch (err) {
      this.setState({ error: errorText(err) });
      return undefined;
    }
  }

  async recall(seq: number): Promise<void> {
    const r = await this.lifecycleCall((api, conv) => api.recall(conv, seq));
    if (r?.event) this.applyOwnEvent(r.event);
  }

  async edit(seq: number, text: string): Promise<void> {
    const t = text.trim();
    if (!t) return;
    const r = await this.lifecycleCall((api, conv) => api.edit(conv, seq, t));
    if (r?.event) this.applyOwnEvent(r.event);
  }

  /** Toggle this user's `emoji` on message `seq`. */
  async react(seq: number, emoji: string): Promise<void> {
    const mine = this.reactionBook.of(seq).find((r) => r.emoji === emoji)?.mine ?? false;
    const r = await this.lifecycleCall((api, conv) => api.react(conv, seq, emoji, !mine));
    if (r?.event) this.applyOwnEvent(r.event);
    else if (r) void this.loadReactions();
  }

  /** Delete messages for this user (all their devices). */
  async hide(seqs: number[]): Promise<void> {
    const r = await this.lifecycleCall((api, conv) => api.hide(conv, seqs));
    if (r?.change) this.deps.lifecycle!.sync.onHidden(r.change);
  }

  /** Forward messages of this chat to a user or conversation, one by one or merged into a chat-history card. */
  async forward(seqs: number[], target: { to: string } | { conv: string }, merged: boolean): Promise<boolean> {
    const clientMsgId = `fw${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const r = await this.lifecycleCall((api, conv) => api.forward({ from: conv, seqs, ...target, merged, clientMsgId }));
    return r !== undefined;
  }

  /** This device's own change is applied at once (the event also arrives through sync; applying twice changes nothing). */
  private applyOwnEvent(event: Message): void {
    this.deps.lifecycle?.sync.onEvent(event);
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
    if (m.kind === 'system') this.scheduleRights();
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
      const list = this.rawMembers ?? (await this.deps.groups.allMembers(this.conv, 1000));
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
    // Events in the window apply to their targets here too (the local store follows them through LifecycleSync).
    const recalledSeqs = new Set<number>();
    const editedText = new Map<number, string>();
    for (const m of list) {
      const target = (m.body as { seq?: unknown } | null)?.seq;
      if (typeof target !== 'number') continue;
      if (m.kind === 'recall') recalledSeqs.add(target);
      else if (m.kind === 'edit' && typeof (m.body as { text?: unknown }).text === 'string') editedText.set(target, (m.body as { text: string }).text);
    }
    const bySeq = new Map<number, LocalMessage>();
    for (const raw of list) {
      if (raw.seq === null) continue;
      let m = raw;
      if (recalledSeqs.has(raw.seq) && raw.kind !== 'recalled') m = { ...raw, kind: 'recalled', body: { by: '', at: 0, kind: raw.kind } };
      else if (editedText.has(raw.seq) && raw.kind === 'text') m = { ...raw, body: { ...(raw.body as object), text: editedText.get(raw.seq), edited: (raw.body as { edited?: number }).edited ?? raw.time } };
      bySeq.set(raw.seq, m);
    }
    const view = (m: LocalMessage) => (m.seq !== null ? (bySeq.get(m.seq) ?? m) : m);
    const quote = (seq: number) => {
      const q = bySeq.get(seq);
      if (!q) return { seq, senderName: '', text: 'Earlier message' };
      return { seq, senderName: q.sender === me ? 'You' : nameOf(q.sender), text: q.kind === 'recalled' ? 'Message recalled' : q.kind === LOCAL_HIDDEN_KIND ? 'Deleted' : messageText(q, nameOf) };
    };
    for (const raw of list) {
      const m = view(raw);
      if (LIFECYCLE_EVENT_KINDS.has(m.kind) || m.kind === LOCAL_HIDDEN_KIND) continue;
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
        failure: m.own && m.state === 'failed' ? failureText(m.error, s.sendBlocked !== null) : null,
        recalled: m.kind === 'recalled',
        edited: m.kind === 'text' && typeof (m.body as { edited?: unknown }).edited === 'number',
        reply: m.kind === 'text' && typeof (m.body as { replyTo?: unknown }).replyTo === 'number' ? quote((m.body as { replyTo: number }).replyTo) : null,
        reactions: m.seq !== null && m.kind !== 'recalled' ? this.reactionBook.of(m.seq).map(({ emoji, count, mine }) => ({ emoji, count, mine })) : [],
        localUrl: this.localUrls.get(m.clientMsgId) ?? null,
      });
      lastSender = m.sender;
    }
    // Uploads in progress come last: they are the newest things this user sent.
    if (s.atLatest) for (const { item } of this.uploads.values()) items.push(item);
    const unreadAbove = s.firstUnreadSeq !== null && this.lo > s.firstUnreadSeq ? Math.max(1, this.unreadAtOpen - loadedUnread) : 0;
    this.setState({ items, title: this.title(), unreadAbove, conv: this.conv });
  }
}

/** "1.2 MB", "340 KB", "12 B" (decimal units, as file managers show). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
