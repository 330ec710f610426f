import { useEffect, useRef, useState } from 'react';
import type { ConversationRow, MessageHit } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { chatPath, messagePath, type Route } from '../router.ts';
import { dismissPushOffer, enablePush, pushStatus, shouldOfferPush, type PushStatus } from '../push.ts';
import { Avatar, Empty, Header, Link, Notice } from './common.tsx';
import { Icon } from './icons.tsx';
import { useRovingFocus } from '../roving.ts';
import { listTime } from '../i18n/format.ts';
import { previewText, youText } from '../i18n/sdk-text.ts';
import { bootMark } from '../boot.ts';

function RowMenu(props: { session: Session; row: ConversationRow }) {
  const { row, session } = props;
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent | KeyboardEvent) => {
      if (e instanceof KeyboardEvent ? e.key === 'Escape' : !ref.current?.contains(e.target as Node)) setOpen(false);
    };
    addEventListener('mousedown', close);
    addEventListener('keydown', close);
    return () => {
      removeEventListener('mousedown', close);
      removeEventListener('keydown', close);
    };
  }, [open]);
  const act = (fn: () => Promise<void>) => () => {
    setOpen(false);
    void fn().catch(() => undefined);
  };
  const vm = session.conversations;
  return (
    <div className="row-menu" ref={ref}>
      <button type="button" className="icon-button" aria-haspopup="menu" aria-expanded={open} aria-label={t('list.options', { title: row.title })} data-testid="row-menu" onClick={() => setOpen(!open)}>
        <Icon name="more" />
      </button>
      {open && (
        <div className="menu" role="menu">
          <button type="button" role="menuitem" autoFocus onClick={act(() => vm.pin(row.conv, !row.pinned))}>
            {row.pinned ? t('list.unpin') : t('list.pin')}
          </button>
          <button type="button" role="menuitem" onClick={act(() => vm.mute(row.conv, !row.muted))}>
            {row.muted ? t('list.unmute') : t('list.mute')}
          </button>
          {row.unread > 0 && (
            <button type="button" role="menuitem" onClick={act(() => vm.markRead(row.conv))}>
              {t('list.markRead')}
            </button>
          )}
          <button
            type="button"
            role="menuitem"
            className="danger"
            data-testid="delete-chat"
            onClick={() => {
              setOpen(false);
              // Deleting wipes this chat's history for this user: ask first.
              if (confirm(t('list.confirmDelete', { title: row.title }))) void vm.remove(row.conv).catch(() => undefined);
            }}
          >
            {t('list.delete')}
          </button>
        </div>
      )}
    </div>
  );
}

function PushOffer(props: { session: Session }) {
  const [status, setStatus] = useState<PushStatus | null>(null);
  const [sentHere, setSentHere] = useState(() => localStorage.getItem('magpie.sentHere') === '1');
  const [hidden, setHidden] = useState(false);
  const { t } = useTranslation();
  useEffect(() => {
    void pushStatus().then(setStatus);
    return props.session.client.on('message', (m) => {
      if (m.own && m.state === 'sending') {
        localStorage.setItem('magpie.sentHere', '1');
        setSentHere(true);
      }
    });
  }, [props.session]);
  if (hidden || !status || !shouldOfferPush(status, sentHere)) return null;
  return (
    <div className="push-offer" role="region" aria-label={t('push.region')} data-testid="push-offer">
      <p>{t('push.offer')}</p>
      <div className="row-actions">
        <button
          type="button"
          className="primary small"
          onClick={async () => {
            const s = await enablePush(props.session.saved.token);
            setStatus(s);
            if (s !== 'default') setHidden(true);
          }}
        >
          {t('push.turnOn')}
        </button>
        <button
          type="button"
          className="small"
          onClick={() => {
            dismissPushOffer();
            setHidden(true);
          }}
        >
          {t('push.notNow')}
        </button>
      </div>
    </div>
  );
}

function Row(props: { session: Session; r: ConversationRow; current: string | null; requests: number }) {
  const { session, r, current } = props;
  const { t } = useTranslation();
  const dir = useVM(session.directory);
  const avatar = r.peer ? dir.users[r.peer]?.avatar : null;
  return (
    <li className={`row${r.conv === current ? ' selected' : ''}${r.muted ? ' muted' : ''}`} data-testid="conversation-row" data-conv={r.conv} data-title={r.title}>
      <Link to={chatPath(r.conv)} className="row-link" current={r.conv === current}>
        <Avatar name={r.title} id={r.conv} group={r.kind !== 'direct'} src={avatar} />
        <span className="row-main">
          <span className="row-top">
            <span className="row-title">
              {r.pinned && (
                <span className="pin" title={t('list.pinned')} data-testid="pinned">
                  <Icon name="pin" size={13} title={t('list.pinned')} />
                </span>
              )}
              {r.title}
              {r.subject && (
                <span className="subject-tag" data-testid="row-subject" title={t('chat.subject', { title: r.subject })}>
                  {r.subject}
                </span>
              )}
            </span>
            <span className="row-time">{r.time ? listTime(r.time) : ''}</span>
          </span>
          <span className="row-bottom">
            <span className={`row-preview${r.draft ? ' draft' : ''}`}>{previewText(r)}</span>
            {props.requests > 0 && (
              <span className="badge quiet" data-testid="row-join-requests" aria-label={t('list.joinRequests', { count: props.requests })} title={t('groups.joinRequests')}>
                +{props.requests}
              </span>
            )}
            {r.mentions > 0 && (
              <span className="mention" data-testid="mention-marker" aria-label={t('list.mentioned')}>
                @
              </span>
            )}
            {r.muted && (
              <span className="muted-icon" title={t('list.muted')} data-testid="muted">
                <Icon name="bellOff" size={14} title={t('list.muted')} />
              </span>
            )}
            {r.unread > 0 && (
              <span className={`badge${r.muted ? ' quiet' : ''}`} data-testid="unread-badge" aria-label={t('tabs.unread', { count: r.unread })}>
                {r.unread > 99 ? '99+' : r.unread}
              </span>
            )}
          </span>
        </span>
      </Link>
      <RowMenu session={session} row={r} />
    </li>
  );
}

function Hit(props: { h: MessageHit; q: string }) {
  const { h } = props;
  const { t } = useTranslation();
  return (
    <li className="row" data-testid="message-hit" data-conv={h.conv} data-seq={h.seq}>
      <Link to={messagePath(h.conv, h.seq)} className="row-link">
        <Avatar name={h.title} id={h.conv} group={!h.conv.startsWith('d:')} />
        <span className="row-main">
          <span className="row-top">
            <span className="row-title">{h.title}</span>
            <span className="row-time">{listTime(h.time)}</span>
          </span>
          <span className="row-bottom">
            <span className="row-preview hit-snippet">
              {t('list.senderPrefix', { name: youText(h.senderName), text: h.text })}
            </span>
          </span>
        </span>
      </Link>
    </li>
  );
}

export function ConversationListPane(props: { session: Session; route: Route }) {
  const { session, route } = props;
  const { t } = useTranslation();
  const s = useVM(session.conversations);
  const requests = useVM(session.joinRequests).byConv;
  const [q, setQ] = useState(s.query);
  const current = route.name === 'chat' || route.name === 'bundle' ? route.conv : null;
  const roving = useRovingFocus<HTMLUListElement>('a.row-link', '.row-menu > button');
  useEffect(() => {
    const t = setTimeout(() => void session.conversations.search(q), 200);
    return () => clearTimeout(t);
  }, [q, session]);
  const loadedMark = useRef(false);
  useEffect(() => {
    if (!s.loaded || loadedMark.current) return;
    loadedMark.current = true;
    bootMark('list-shown', { rows: s.rows.length, titles: s.rows.slice(0, 5).map((r) => r.title), leader: session.leader, online: navigator.onLine });
  }, [s.loaded, s.rows, session]);
  const searching = q.trim() !== '';
  return (
    <section className="conv-list" aria-label={t('list.label')} data-testid="conversation-list" data-loaded={s.loaded}>
      <Header title={t('list.title')}>
        <Link to="/search" className="icon-button" label={t('list.findPeople')}>
          <Icon name="search" />
        </Link>
        <Link to="/new-group" className="icon-button" label={t('list.newGroup')} testId="new-group">
          <Icon name="plus" />
        </Link>
      </Header>
      <form className="list-search" role="search" onSubmit={(e) => e.preventDefault()}>
        <label className="sr-only" htmlFor="chat-search">
          {t('list.search')}
        </label>
        <input id="chat-search" type="search" placeholder={t('list.search')} value={q} onChange={(e) => setQ(e.target.value)} data-testid="chat-search" />
      </form>
      <PushOffer session={session} />
      <Notice error={s.error} />
      {!searching && s.loaded && s.rows.length === 0 && <Empty>{t('list.empty')}</Empty>}
      {searching ? (
        <div data-testid="chat-search-results">
          <h2 className="section-title">{t('list.title')}</h2>
          {s.matches.length === 0 && <p className="muted center">{t('list.noChatMatch')}</p>}
          <ul className="rows">
            {s.matches.map((r) => (
              <Row key={r.conv} session={session} r={r} current={current} requests={requests[r.conv] ?? 0} />
            ))}
          </ul>
          <h2 className="section-title">{t('list.messages')}</h2>
          {s.searching && <p className="muted center">{t('search.searching')}</p>}
          {!s.searching && s.hits.length === 0 && <p className="muted center">{t('list.noMessageMatch')}</p>}
          <ul className="rows">
            {s.hits.map((h) => (
              <Hit key={`${h.conv}:${h.seq}`} h={h} q={q} />
            ))}
          </ul>
        </div>
      ) : (
        <ul className="rows" ref={roving.ref} onFocus={roving.onFocus} onKeyDown={roving.onKeyDown} aria-label={t('list.listLabel')}>
          {s.rows.map((r) => (
            <Row key={r.conv} session={session} r={r} current={current} requests={requests[r.conv] ?? 0} />
          ))}
        </ul>
      )}
    </section>
  );
}
