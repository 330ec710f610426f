import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { ChatViewModel, isSubjectConversation, messagePreview, type ChatItem, type ChatTarget, type LocalMessage, type MessageSearchHit, type ProfileSummary } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import { useOwnedVM, useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { bundlePath, chatPath, groupPath, navigate, usePath } from '../router.ts';
import { Header, Link, Notice } from './common.tsx';
import { Icon } from './icons.tsx';
import { Linkified } from '../linkify.tsx';
import { dateTime, dayLabelOfKey, timeOfDay } from '../i18n/format.ts';
import { sdkText, statusText } from '../i18n/sdk-text.ts';
import { currentLanguage } from '../i18n/index.ts';
import { PresenceLine, ReceiptBadge, TypingLine, useReceiptsTick } from './Receipts.tsx';
import { RedPacketItem, RedPacketStatusNotice, SendRedPacketDialog } from './RedPacket.tsx';
import { MessageMedia, RICH_KINDS } from '../media/MessageMedia.tsx';
import { AttachMenu, UploadBubble, sendFiles } from '../media/Attach.tsx';
import { Lightbox } from '../media/Lightbox.tsx';
import { VoiceRecorder } from '../media/VoiceRecorder.tsx';

/** The state of an own message: ✓ sent, ✓✓ delivered ("Delivered to N" in a normal group). */
function Status(props: { m: LocalMessage; vm: ChatViewModel; session: Session; failure: { text: string; canRetry: boolean } | null }) {
  const { m, failure } = props;
  const { t } = useTranslation();
  if (!m.own) return null;
  const icon = m.state === 'sending' ? 'clock' : m.state === 'sent' ? 'check' : m.state === 'delivered' ? 'checks' : 'alert';
  return (
    <span className={`msg-state ${m.state}`} data-testid="msg-state" data-state={m.state} data-delivered-count={m.deliveredCount ?? undefined}>
      <Icon name={icon} size={13} /> {statusText(m)}
      {(m.state === 'sent' || m.state === 'delivered') && <ReceiptBadge session={props.session} m={m} />}
      {m.state === 'failed' && failure && (
        <>
          <span className="msg-error" data-testid="failure" data-retryable={failure.canRetry}>
            {' '}
            — {sdkText(failure.text)}
          </span>{' '}
          {failure.canRetry && (
            <button type="button" className="link" data-testid="retry" onClick={() => void props.vm.retry(m.clientMsgId)}>
              {t('chat.retry')}
            </button>
          )}
        </>
      )}
    </span>
  );
}

function Item(props: { item: ChatItem; vm: ChatViewModel; group: boolean; session: Session; ui: ItemUi; highlight: boolean; onOpenImage: (clientMsgId: string) => void }) {
  const { item } = props;
  const { t } = useTranslation();
  switch (item.type) {
    case 'upload':
      return <UploadBubble item={item} vm={props.vm} />;
    case 'day':
      return (
        <li className="day-sep" data-testid="day-separator">
          <span>{dayLabelOfKey(item.key) ?? item.label}</span>
        </li>
      );
    case 'unread':
      return (
        <li className="unread-sep" data-testid="unread-divider">
          <span>{t('chat.newMessages')}</span>
        </li>
      );
    case 'system':
      return (
        <li className="system" data-testid="system-notice" data-seq={item.seq ?? ''}>
          {item.text}
        </li>
      );
    case 'message': {
      const m = item.message;
      if (m.kind === 'redpacket' && m.body && typeof (m.body as { packetId?: unknown }).packetId === 'string') {
        return <RedPacketItem session={props.session} m={m} own={item.own} senderName={item.own ? t('app.you') : item.senderName} showSender={props.group && item.showSender} />;
      }
      if (m.kind === 'redpacket.status' && m.body && typeof (m.body as { packetId?: unknown }).packetId === 'string') return <RedPacketStatusNotice session={props.session} m={m} />;
      const { ui } = props;
      const seq = m.seq;
      const selecting = ui.selected !== null;
      const bundle = m.kind === 'bundle' ? (m.body as { title?: string; items?: unknown[] }) : null;
      return (
        <li
          className={`msg ${item.own ? 'own' : 'theirs'}${item.mentionsMe ? ' mentions-me' : ''}${item.recalled ? ' recalled' : ''}${ui.actionsFor === seq ? ' show-actions' : ''}${props.highlight ? ' highlight' : ''}${RICH_KINDS.has(m.kind) ? ' rich' : ''}`}
          data-testid="message"
          data-seq={m.seq ?? ''}
          data-state={m.state}
          data-kind={m.kind}
          data-highlight={props.highlight || undefined}
          onContextMenu={(e) => {
            // Long-press on touch screens opens the context menu: show the actions instead.
            if (seq === null) return;
            e.preventDefault();
            ui.setActionsFor(ui.actionsFor === seq ? null : seq);
          }}
        >
          {selecting && seq !== null && !item.recalled && (
            <input type="checkbox" className="msg-select" aria-label={t('chat.select')} data-testid="select-message" checked={ui.selected!.has(seq)} onChange={() => ui.toggleSelected(seq)} />
          )}
          {props.group && !item.own && item.showSender && (
            <div className="msg-sender" aria-hidden="true">
              {item.senderName}
            </div>
          )}
          <div className="bubble">
            {/* Screen readers hear who sent each message, also where the name is not shown. */}
            <span className="sr-only" data-testid="msg-sender">
              {t('chat.senderSaid', { name: item.own ? t('app.you') : item.senderName })}{' '}
            </span>
            {item.reply && (
              <span className="msg-quote" data-testid="quote" data-quote-seq={item.reply.seq}>
                <b>{item.reply.senderName}</b> {item.reply.text === 'Message recalled' ? t('chat.recalled') : item.reply.text}
              </span>
            )}
            {item.recalled ? (
              <span className="msg-text msg-recalled" data-testid="recalled">
                {item.own ? t('chat.recalledByYou') : t('chat.recalled')}
              </span>
            ) : RICH_KINDS.has(m.kind) ? (
              <>
                <span className="sr-only">{item.text} </span>
                <MessageMedia session={props.session} message={m} localUrl={item.localUrl} onOpenImage={props.onOpenImage} />
              </>
            ) : bundle ? (
              <button
                type="button"
                className="msg-text msg-bundle"
                data-testid="bundle"
                disabled={seq === null || m.conv === null}
                onClick={() => seq !== null && m.conv !== null && navigate(bundlePath(m.conv, seq))}
              >
                {t('chat.bundleOpen', { title: bundle.title ?? '', count: bundle.items?.length ?? 0 })}
                <ol>
                  {(bundle.items ?? []).slice(0, 5).map((x, i) => (
                    <li key={i}>{typeof (x as { body?: { text?: unknown } }).body?.text === 'string' ? (x as { body: { text: string } }).body.text : messagePreview((x as { kind?: string }).kind ?? '', (x as { body?: unknown }).body, currentLanguage())}</li>
                  ))}
                </ol>
              </button>
            ) : (
              <span className="msg-text">
                <Linkified text={item.text} />
              </span>
            )}
            <span className="msg-meta">
              {item.edited && !item.recalled && (
                <span className="msg-edited" data-testid="edited">
                  {t('chat.edited')}{' '}
                </span>
              )}
              <time dateTime={new Date(m.time).toISOString()} title={dateTime(m.time)}>
                {timeOfDay(m.time)}
              </time>
              <Status m={m} vm={props.vm} session={props.session} failure={item.failure} />
            </span>
          </div>
          {item.reactions.length > 0 && (
            <div className="reactions" data-testid="reactions">
              {item.reactions.map((r) => (
                <button key={r.emoji} type="button" className={`reaction-chip${r.mine ? ' mine' : ''}`} aria-pressed={r.mine} data-testid="reaction" data-emoji={r.emoji} onClick={() => seq !== null && void props.vm.react(seq, r.emoji)}>
                  {r.emoji} {r.count}
                </button>
              ))}
            </div>
          )}
          {seq !== null && !item.recalled && !selecting && (
            <div className="msg-actions-slot">
            <div className="msg-actions" role="toolbar" aria-label={t('chat.actions')} data-testid="msg-actions">
              {QUICK_EMOJIS.map((e) => (
                <button key={e} type="button" className="icon-button small" aria-label={t('chat.react', { emoji: e })} data-testid="react" data-emoji={e} onClick={() => void props.vm.react(seq, e)}>
                  {e}
                </button>
              ))}
              <button type="button" className="link" data-testid="action-reply" onClick={() => ui.setReply({ seq, name: item.senderName })}>
                {t('chat.reply')}
              </button>
              <button type="button" className="link" data-testid="action-forward" onClick={() => ui.startSelect(seq)}>
                {t('chat.forward')}
              </button>
              <button type="button" className="link" data-testid="action-copy" onClick={() => void navigator.clipboard?.writeText(item.text).catch(() => undefined)}>
                {t('chat.copy')}
              </button>
              {item.own && (
                <button type="button" className="link" data-testid="action-recall" onClick={() => void props.vm.recall(seq)}>
                  {t('chat.recall')}
                </button>
              )}
              {item.own && m.kind === 'text' && (
                <button
                  type="button"
                  className="link"
                  data-testid="action-edit"
                  onClick={() => {
                    const next = prompt(t('chat.editPrompt'), item.text);
                    if (next !== null) void props.vm.edit(seq, next);
                  }}
                >
                  {t('chat.edit')}
                </button>
              )}
              <button type="button" className="link" data-testid="action-delete" onClick={() => void props.vm.hide([seq])}>
                {t('chat.deleteForMe')}
              </button>
            </div>
            </div>
          )}
        </li>
      );
    }
  }
}

const QUICK_EMOJIS = ['👍', '❤️', '😂'];

/** Per-chat UI state of the lifecycle actions: the open action bar, the reply target, selection mode. */
interface ItemUi {
  actionsFor: number | null;
  setActionsFor: (seq: number | null) => void;
  setReply: (r: { seq: number; name: string } | null) => void;
  selected: Set<number> | null;
  toggleSelected: (seq: number) => void;
  startSelect: (seq: number) => void;
}

/** `@` and what follows it at the end of the text (any letters, any script), or undefined. */
const MENTION_AT_END = /(^|\s)@([^\s@]*)$/u;

function Composer(props: { vm: ChatViewModel; session: Session; draft: string; blocked: string | null; onType?: () => void; onRedPacket?: () => void; onSent?: () => void }) {
  const { vm, blocked, session } = props;
  const { t } = useTranslation();
  const [text, setText] = useState(props.draft);
  const [suggest, setSuggest] = useState<{ list: ProfileSummary[]; index: number }>({ list: [], index: 0 });
  const ref = useRef<HTMLTextAreaElement>(null);
  const textRef = useRef(text);
  textRef.current = text;
  // The draft is saved while typing (a reload keeps it) and when the chat is left.
  useEffect(() => () => void vm.saveDraft(textRef.current), [vm]);
  useEffect(() => {
    const t = setTimeout(() => void vm.saveDraft(text), 700);
    return () => clearTimeout(t);
  }, [text, vm]);
  // A draft that arrives later (the chat list was still syncing, or another device saved one) fills an empty composer.
  useEffect(() => {
    if (props.draft && !textRef.current) setText(props.draft);
  }, [props.draft]);
  const partial = MENTION_AT_END.exec(text)?.[2];
  useEffect(() => {
    let live = true;
    if (partial === undefined) setSuggest({ list: [], index: 0 });
    else void vm.mentionSuggestions(partial).then((list) => live && setSuggest({ list, index: 0 }));
    return () => {
      live = false;
    };
  }, [partial, vm]);
  const pick = (u: ProfileSummary) => {
    const insert = vm.pickMention(u);
    setText(text.replace(/@([^\s@]*)$/u, insert));
    setSuggest({ list: [], index: 0 });
    ref.current?.focus();
  };
  const tooLong = text.trim() ? vm.checkText(text) : null;
  const send = async () => {
    const typed = text;
    if (!typed.trim() || blocked || tooLong) return;
    setText('');
    await vm.sendText(typed);
    props.onSent?.();
    ref.current?.focus();
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (suggest.list.length > 0) {
      const n = suggest.list.length;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setSuggest({ ...suggest, index: (suggest.index + (e.key === 'ArrowDown' ? 1 : n - 1)) % n });
        return;
      }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey)) {
        e.preventDefault();
        pick(suggest.list[suggest.index]!);
        return;
      }
      if (e.key === 'Escape') {
        setSuggest({ list: [], index: 0 });
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };
  if (blocked) {
    return (
      <div className="composer blocked" role="status" data-testid="send-blocked">
        <Icon name="bellOff" size={16} /> {sdkText(blocked)}
      </div>
    );
  }
  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {suggest.list.length > 0 && (
        <ul className="mentions-list" role="listbox" id="mention-list" aria-label={t('chat.mentionList')} data-testid="mention-suggestions">
          {suggest.list.map((u, i) => (
            <li key={u.id} role="option" aria-selected={i === suggest.index} className={i === suggest.index ? 'active' : ''} onMouseDown={(e) => (e.preventDefault(), pick(u))}>
              <strong>{u.nickname || u.username}</strong> <span className="muted">@{u.username}</span>
            </li>
          ))}
        </ul>
      )}
      {tooLong && (
        <p className="composer-problem" role="alert" data-testid="too-long">
          {sdkText(tooLong)}
        </p>
      )}
      <AttachMenu session={session} vm={vm} />
      <label className="sr-only" htmlFor="composer-input">
        {t('chat.message')}
      </label>
      <textarea
        id="composer-input"
        ref={ref}
        rows={1}
        aria-controls={suggest.list.length ? 'mention-list' : undefined}
        aria-autocomplete="list"
        placeholder={t('chat.message')}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value) props.onType?.();
        }}
        onKeyDown={onKey}
        onPaste={(e) => {
          // A pasted picture or file is sent (the text of a paste stays in the composer).
          const files = [...e.clipboardData.files];
          if (files.length === 0) return;
          e.preventDefault();
          void sendFiles(session, vm, files);
        }}
        data-testid="composer"
        autoFocus
      />
      <VoiceRecorder
        onRecorded={(note) => vm.sendMedia({ file: note.file, kind: 'voice', name: note.file.name, size: note.file.size, body: { duration: note.duration, waveform: note.waveform } })}
        onError={(msg) => vm.setError(msg)}
      />
      {props.onRedPacket && (
        <button type="button" className="icon-button rp-button" aria-label={t('redpacket.button')} title={t('redpacket.button')} onClick={props.onRedPacket} data-testid="redpacket-button">
          <Icon name="gift" />
        </button>
      )}
      <button type="submit" className="primary send" disabled={!text.trim() || !!tooLong} aria-label={t('chat.send')} data-testid="send">
        <Icon name="send" />
      </button>
    </form>
  );
}

/** Search inside one conversation (the server's search with `conv`); a hit jumps the chat to that message. */
function InChatSearch(props: { session: Session; conv: string; onPick: (seq: number) => void; onClose: () => void }) {
  const { session, conv } = props;
  const { t } = useTranslation();
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<MessageSearchHit[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!q.trim()) {
      setHits(null);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      session.search.search(q.trim(), { conv, limit: 50 }).then(
        (r) => live && (setHits(r.hits), setError(null)),
        (err: unknown) => live && setError(err instanceof Error ? err.message : String(err)),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q, conv, session]);
  return (
    <div className="in-chat-search" data-testid="in-chat-search">
      <form role="search" onSubmit={(e) => e.preventDefault()}>
        <label className="sr-only" htmlFor="in-chat-search-input">
          {t('chat.searchInPlaceholder')}
        </label>
        <input id="in-chat-search-input" type="search" placeholder={t('chat.searchInPlaceholder')} value={q} onChange={(e) => setQ(e.target.value)} autoFocus data-testid="in-chat-search-input" />
        <button type="button" className="icon-button" aria-label={t('chat.closeSearch')} onClick={props.onClose} data-testid="in-chat-search-close">
          <Icon name="close" />
        </button>
      </form>
      <Notice error={error} />
      {hits && hits.length === 0 && <p className="muted center">{t('chat.noHits')}</p>}
      {hits && hits.length > 0 && (
        <ul className="rows in-chat-hits" data-testid="in-chat-hits">
          {hits.map((h) => (
            <li key={h.seq}>
              <button type="button" className="row-link hit" data-testid="in-chat-hit" data-seq={h.seq} onClick={() => props.onPick(h.seq)}>
                <span className="row-preview">{h.text}</span>
                <span className="row-time">{dateTime(h.time)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function ChatScreen(props: { session: Session; target: ChatTarget; wide: boolean }) {
  const { session, target } = props;
  const key = 'conv' in target ? `c:${target.conv}` : `p:${target.peer}`;
  const vm = useOwnedVM(() => new ChatViewModel({ client: session.client, lifecycle: session.lifecycle, directory: session.directory, groups: session.groups, drafts: session.drafts, media: session.media }, target), key);
  if (!vm) return <section className="chat" aria-busy="true" />;
  return <ChatView session={session} vm={vm} wide={props.wide} />;
}

function ChatView(props: { session: Session; vm: ChatViewModel; wide: boolean }) {
  const { vm, session } = props;
  const { t } = useTranslation();
  const s = useVM(vm);
  const list = useVM(session.conversations);
  const row = s.conv ? list.rows.find((r) => r.conv === s.conv) : undefined;
  // On a phone the list is hidden: the back button counts what arrived in other chats.
  const elsewhere = list.totalUnread - (row && !row.muted ? row.unread : 0);
  const [rpOpen, setRpOpen] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const jumped = useRef(false);
  const prevHeight = useRef<{ h: number; top: number; first: string | undefined } | null>(null);
  const path = usePath();
  const [finding, setFinding] = useState(false);
  const [subject, setSubject] = useState<string | null>(null);
  const scrolledTo = useRef<number | null>(null);

  // `?seq=N` (a search hit): open the chat at that message.
  const jumpSeq = Number(new URLSearchParams(path.split('?')[1] ?? '').get('seq')) || null;
  useEffect(() => {
    if (!s.conv || jumpSeq === null) return;
    stick.current = false;
    scrolledTo.current = null;
    void vm.jumpToSeq(jumpSeq);
  }, [s.conv, jumpSeq, vm]);

  // A subject conversation shows its subject (an item, an order) under the title.
  useEffect(() => {
    let live = true;
    if (s.conv && isSubjectConversation(s.conv)) void session.search.subject(s.conv).then((x) => live && setSubject(x?.title ?? null), () => {});
    return () => {
      live = false;
    };
  }, [s.conv, session]);

  useEffect(() => {
    void vm.start();
    const vis = () => vm.setVisible(document.visibilityState === 'visible');
    vis();
    document.addEventListener('visibilitychange', vis);
    return () => document.removeEventListener('visibilitychange', vis);
  }, [vm]);

  // A direct chat opened from a contact: once its conversation exists, the URL names it.
  useEffect(() => {
    if (s.conv && location.pathname.startsWith('/dm/') && row) navigate(chatPath(s.conv), { replace: true });
  }, [s.conv, row]);

  // Keep the view at the bottom while it is there; keep the position when older messages are added on top.
  const firstKey = s.items.find((i) => i.type === 'message' || i.type === 'system')?.key;
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const prev = prevHeight.current;
    const divider = el.querySelector<HTMLElement>('[data-testid=unread-divider]');
    if (jumped.current && divider) {
      // After the jump to the oldest unread: show it at the top.
      jumped.current = false;
      el.scrollTop = Math.max(0, divider.offsetTop - el.offsetTop - 8);
    } else if (prev && prev.first !== firstKey && !stick.current) el.scrollTop = prev.top + (el.scrollHeight - prev.h);
    else if (stick.current && s.atLatest) el.scrollTop = el.scrollHeight;
    prevHeight.current = { h: el.scrollHeight, top: el.scrollTop, first: firstKey };
  }, [s.items, firstKey, s.atLatest]);

  // After a jump: bring the message into view once.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || s.highlightSeq === null || scrolledTo.current === s.highlightSeq) return;
    const target = el.querySelector<HTMLElement>('[data-highlight]');
    if (!target) return;
    scrolledTo.current = s.highlightSeq;
    stick.current = false;
    target.scrollIntoView({ block: 'center' });
    prevHeight.current = { h: el.scrollHeight, top: el.scrollTop, first: firstKey };
  }, [s.items, s.highlightSeq, firstKey]);

  const jumpTo = (seq: number) => {
    stick.current = false;
    scrolledTo.current = null;
    void vm.jumpToSeq(seq);
  };

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    prevHeight.current = { h: el.scrollHeight, top: el.scrollTop, first: firstKey };
    if (el.scrollTop < 60 && s.hasOlder && !s.loadingOlder) void vm.loadOlder();
    if (stick.current && !s.atLatest) void vm.loadNewer();
  };

  const [actionsFor, setActionsFor] = useState<number | null>(null);
  const [reply, setReplyState] = useState<{ seq: number; name: string } | null>(null);
  const [selected, setSelected] = useState<Set<number> | null>(null);
  const [pickTarget, setPickTarget] = useState<null | { merged: boolean }>(null);
  const setReply = (r: { seq: number; name: string } | null) => {
    setReplyState(r);
    vm.setReplyTo(r?.seq ?? null);
  };
  const ui: ItemUi = {
    actionsFor,
    setActionsFor,
    setReply,
    selected,
    toggleSelected: (seq) =>
      setSelected((cur) => {
        const next = new Set(cur ?? []);
        if (next.has(seq)) next.delete(seq);
        else next.add(seq);
        return next;
      }),
    startSelect: (seq) => setSelected(new Set([seq])),
  };
  const forwardTo = async (conv: string, merged: boolean) => {
    const seqs = [...(selected ?? [])].sort((a, b) => a - b);
    setPickTarget(null);
    if (seqs.length === 0) return;
    if (await vm.forward(seqs, { conv }, merged)) setSelected(null);
  };
  // Images of the loaded window, for the lightbox's previous/next.
  const images = useMemo(() => s.items.flatMap((i) => (i.type === 'message' && i.message.kind === 'image' && (i.message.body as { upload?: string }).upload ? [i.message] : [])), [s.items]);
  const [lightbox, setLightbox] = useState<number | null>(null);
  const openImage = (id: string) => setLightbox(Math.max(0, images.findIndex((m) => m.clientMsgId === id)));
  const [dragging, setDragging] = useState(false);
  const drag = useRef(0);
  const canDrop = s.draft !== null && !s.sendBlocked;
  const hasFiles = (e: React.DragEvent) => [...e.dataTransfer.types].includes('Files');

  const group = s.kind !== 'direct';
  useReceiptsTick(session);
  // Asked again whenever the connection comes (back) up: requests need the authenticated socket.
  const online = useVM(session.connection).status === 'online';
  // Receipt states of own messages in view: one query when the chat opens or grows.
  const ownSeqs = s.items.flatMap((i) => (i.type === 'message' && i.own && i.message.seq !== null ? [i.message.seq] : []));
  const ownKey = `${s.conv}:${ownSeqs.at(0)}:${ownSeqs.at(-1)}:${ownSeqs.length}`;
  useEffect(() => {
    if (online && s.conv && ownSeqs.length > 0) void session.receipts.load(s.conv, ownSeqs).catch(() => {});
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ownKey, online]);
  const peer = s.kind === 'direct' && s.conv ? s.conv.split(':').slice(1).find((u) => u !== session.client.userId) : undefined;
  useEffect(() => {
    if (online && peer) void session.receipts.subscribePresence([peer]).catch(() => {});
  }, [peer, session, online]);
  const info = group && s.conv ? session.directory.group(s.conv) : undefined;
  const pending = useVM(session.joinRequests).byConv[s.conv ?? ''] ?? 0;
  return (
    <section
      className="chat"
      aria-label={t('chat.label', { title: s.title })}
      data-testid="chat"
      data-conv={s.conv ?? ''}
      onDragEnter={(e) => {
        if (!canDrop || !hasFiles(e)) return;
        drag.current++;
        setDragging(true);
      }}
      onDragLeave={() => {
        if (--drag.current <= 0) {
          drag.current = 0;
          setDragging(false);
        }
      }}
      onDragOver={(e) => {
        if (canDrop && hasFiles(e)) e.preventDefault();
      }}
      onDrop={(e) => {
        drag.current = 0;
        setDragging(false);
        if (!canDrop || e.dataTransfer.files.length === 0) return;
        e.preventDefault();
        void sendFiles(session, vm, [...e.dataTransfer.files]);
      }}
    >
      <Header
        title={s.title || '…'}
        back={props.wide ? undefined : '/'}
        backBadge={elsewhere}
        subtitle={group && info ? t('chat.members', { count: info.memberCount }) : subject ? <span data-testid="chat-subject">{t('chat.subject', { title: subject })}</span> : peer ? <PresenceLine p={session.receipts.presence(peer)} /> : undefined}
        level={2}
      >
        {s.conv && (
          <button type="button" className="icon-button" aria-pressed={finding} aria-label={t('chat.searchIn')} title={t('chat.searchIn')} data-testid="in-chat-search-toggle" onClick={() => setFinding(!finding)}>
            <Icon name="search" />
          </button>
        )}
        {row && (
          <>
            <button type="button" className="icon-button" aria-pressed={row.pinned} aria-label={row.pinned ? t('chat.unpin') : t('chat.pin')} title={row.pinned ? t('chat.unpinShort') : t('chat.pinShort')} data-testid="pin" onClick={() => void session.conversations.pin(row.conv, !row.pinned)}>
              <Icon name="pin" />
            </button>
            <button type="button" className="icon-button" aria-pressed={row.muted} aria-label={row.muted ? t('chat.unmute') : t('chat.mute')} title={row.muted ? t('chat.unmuteShort') : t('chat.muteShort')} data-testid="mute" onClick={() => void session.conversations.mute(row.conv, !row.muted)}>
              <Icon name={row.muted ? 'bellOff' : 'bell'} />
            </button>
          </>
        )}
        {group && s.conv && (
          <Link to={groupPath(s.conv)} className="icon-button" label={pending > 0 ? t('chat.groupInfoRequests', { count: pending }) : t('chat.groupInfo')} testId="group-info">
            <Icon name="info" />
            {pending > 0 && (
              <span className="badge corner" data-testid="join-request-badge">
                {pending}
              </span>
            )}
          </Link>
        )}
      </Header>
      {finding && s.conv && <InChatSearch session={session} conv={s.conv} onPick={jumpTo} onClose={() => setFinding(false)} />}
      {s.announcement && (
        <div className="announcement-banner" role="note" aria-label={t('chat.announcement')} data-testid="announcement-banner">
          <Icon name="pin" size={14} /> <Linkified text={s.announcement} />
        </div>
      )}
      {s.unreadAbove > 0 && (
        <button type="button" className="pill jump-unread" data-testid="jump-unread" onClick={() => {
            jumped.current = true;
            stick.current = false;
            void vm.jumpToOldestUnread();
          }}
        >
          {s.unreadAbove === 1 ? t('chat.unreadOne') : t('chat.unreadMany', { count: s.unreadAbove })}
        </button>
      )}
      <div className="messages" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label={t('chat.messages')} data-testid="messages">
        {s.hasOlder && (
          <button type="button" className="link load-older" onClick={() => void vm.loadOlder()} disabled={s.loadingOlder} data-testid="load-older">
            {s.loadingOlder ? t('app.loading') : t('chat.loadOlder')}
          </button>
        )}
        {s.loading && s.items.length === 0 && <p className="muted center">{t('app.loading')}</p>}
        {!s.loading && s.items.length === 0 && <p className="muted center">{t('chat.empty')}</p>}
        <ol className="items" aria-live="polite">
          {s.items.map((item) => (
            <Item key={item.key} item={item} vm={vm} group={group} session={session} ui={ui} highlight={item.type === 'message' && item.message.seq !== null && item.message.seq === s.highlightSeq} onOpenImage={openImage} />
          ))}
        </ol>
        {!s.atLatest && (
          <button type="button" className="pill jump-latest" onClick={() => void vm.jumpToLatest()} data-testid="jump-latest">
            {t('chat.latest')}
          </button>
        )}
      </div>
      <TypingLine session={session} conv={s.conv} />
      <Notice error={sdkText(s.error)} />
      {selected !== null && (
        <div className="selection-bar" role="toolbar" data-testid="selection-bar">
          <span>{t('chat.selected', { count: selected.size })}</span>
          <button type="button" className="link" data-testid="forward-each" disabled={selected.size === 0} onClick={() => setPickTarget({ merged: false })}>
            {t('chat.forward')}
          </button>
          <button type="button" className="link" data-testid="forward-merged" disabled={selected.size === 0} onClick={() => setPickTarget({ merged: true })}>
            {t('chat.forwardMerged')}
          </button>
          <button type="button" className="link" data-testid="selection-cancel" onClick={() => setSelected(null)}>
            {t('app.cancel')}
          </button>
        </div>
      )}
      {pickTarget && (
        <div className="forward-picker" role="dialog" aria-label={t('chat.forwardTo')} data-testid="forward-picker">
          <p>{t('chat.forwardTo')}</p>
          <ul>
            {list.rows.map((r) => (
              <li key={r.conv}>
                <button type="button" className="link" data-testid="forward-target" data-conv={r.conv} onClick={() => void forwardTo(r.conv, pickTarget.merged)}>
                  {r.title}
                </button>
              </li>
            ))}
          </ul>
          <button type="button" className="link" onClick={() => setPickTarget(null)}>
            {t('app.cancel')}
          </button>
        </div>
      )}
      {reply && (
        <div className="reply-bar" data-testid="reply-bar">
          {t('chat.replyingTo', { name: reply.name })}{' '}
          <button type="button" className="link" onClick={() => setReply(null)}>
            {t('app.cancel')}
          </button>
        </div>
      )}
      {s.draft !== null && <Composer vm={vm} session={session} draft={s.draft} blocked={s.sendBlocked} onType={s.conv ? () => session.receipts.typing(s.conv!) : undefined} onRedPacket={s.kind === 'super' ? undefined : () => setRpOpen(true)} onSent={() => setReplyState(null)} />}
      {rpOpen && <SendRedPacketDialog session={session} conv={s.conv} peer={s.peer} group={group} onClose={() => setRpOpen(false)} />}
      {dragging && (
        <div className="drop-overlay" aria-hidden="true" data-testid="drop-overlay">
          {t('media.dropHere')}
        </div>
      )}
      {lightbox !== null && images.length > 0 && (
        <Lightbox session={session} images={images} index={Math.max(0, Math.min(lightbox, images.length - 1))} onIndex={setLightbox} onClose={() => setLightbox(null)} />
      )}
    </section>
  );
}
