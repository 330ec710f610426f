import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { ChatViewModel, type ChatItem, type ChatTarget, type LocalMessage, type ProfileSummary } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import { useOwnedVM, useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { chatPath, groupPath, navigate } from '../router.ts';
import { Header, Link, Notice } from './common.tsx';
import { Icon } from './icons.tsx';
import { Linkified } from '../linkify.tsx';
import { dateTime, dayLabelOfKey, timeOfDay } from '../i18n/format.ts';
import { sdkText, statusText } from '../i18n/sdk-text.ts';
import { MessageMedia, RICH_KINDS } from '../media/MessageMedia.tsx';
import { AttachMenu, UploadBubble, sendFiles } from '../media/Attach.tsx';
import { Lightbox } from '../media/Lightbox.tsx';
import { VoiceRecorder } from '../media/VoiceRecorder.tsx';

/** The state of an own message: ✓ sent, ✓✓ delivered ("Delivered to N" in a normal group). */
function Status(props: { m: LocalMessage; vm: ChatViewModel; failure: { text: string; canRetry: boolean } | null }) {
  const { m, failure } = props;
  const { t } = useTranslation();
  if (!m.own) return null;
  const icon = m.state === 'sending' ? 'clock' : m.state === 'sent' ? 'check' : m.state === 'delivered' ? 'checks' : 'alert';
  return (
    <span className={`msg-state ${m.state}`} data-testid="msg-state" data-state={m.state} data-delivered-count={m.deliveredCount ?? undefined}>
      <Icon name={icon} size={13} /> {statusText(m)}
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

function Item(props: { item: ChatItem; vm: ChatViewModel; group: boolean; session: Session; onOpenImage: (clientMsgId: string) => void }) {
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
      return (
        <li className={`msg ${item.own ? 'own' : 'theirs'}${item.mentionsMe ? ' mentions-me' : ''}${RICH_KINDS.has(m.kind) ? ' rich' : ''}`} data-testid="message" data-seq={m.seq ?? ''} data-state={m.state} data-kind={m.kind}>
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
            {RICH_KINDS.has(m.kind) ? (
              <>
                <span className="sr-only">{item.text} </span>
                <MessageMedia session={props.session} message={m} localUrl={item.localUrl} onOpenImage={props.onOpenImage} />
              </>
            ) : (
              <span className="msg-text">
                <Linkified text={item.text} />
              </span>
            )}
            <span className="msg-meta">
              <time dateTime={new Date(m.time).toISOString()} title={dateTime(m.time)}>
                {timeOfDay(m.time)}
              </time>
              <Status m={m} vm={props.vm} failure={item.failure} />
            </span>
          </div>
        </li>
      );
    }
  }
}

/** `@` and what follows it at the end of the text (any letters, any script), or undefined. */
const MENTION_AT_END = /(^|\s)@([^\s@]*)$/u;

function Composer(props: { vm: ChatViewModel; session: Session; draft: string; blocked: string | null }) {
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
        onChange={(e) => setText(e.target.value)}
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
      <button type="submit" className="primary send" disabled={!text.trim() || !!tooLong} aria-label={t('chat.send')} data-testid="send">
        <Icon name="send" />
      </button>
    </form>
  );
}

export function ChatScreen(props: { session: Session; target: ChatTarget; wide: boolean }) {
  const { session, target } = props;
  const key = 'conv' in target ? `c:${target.conv}` : `p:${target.peer}`;
  const vm = useOwnedVM(() => new ChatViewModel({ client: session.client, directory: session.directory, groups: session.groups, drafts: session.drafts, media: session.media }, target), key);
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
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const jumped = useRef(false);
  const prevHeight = useRef<{ h: number; top: number; first: string | undefined } | null>(null);

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

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    prevHeight.current = { h: el.scrollHeight, top: el.scrollTop, first: firstKey };
    if (el.scrollTop < 60 && s.hasOlder && !s.loadingOlder) void vm.loadOlder();
    if (stick.current && !s.atLatest) void vm.loadNewer();
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
      <Header title={s.title || '…'} back={props.wide ? undefined : '/'} backBadge={elsewhere} subtitle={group && info ? t('chat.members', { count: info.memberCount }) : undefined} level={2}>
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
            <Item key={item.key} item={item} vm={vm} group={group} session={session} onOpenImage={openImage} />
          ))}
        </ol>
        {!s.atLatest && (
          <button type="button" className="pill jump-latest" onClick={() => void vm.jumpToLatest()} data-testid="jump-latest">
            {t('chat.latest')}
          </button>
        )}
      </div>
      <Notice error={sdkText(s.error)} />
      {s.draft !== null && <Composer vm={vm} session={session} draft={s.draft} blocked={s.sendBlocked} />}
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
