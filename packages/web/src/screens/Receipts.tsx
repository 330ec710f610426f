import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { LocalMessage, PresenceState } from '@magpie/sdk';
import type { Session } from '../session.ts';
import { timeOfDay, dateTime } from '../i18n/format.ts';

/** Re-render on receipt, typing and presence events of the session. */
export function useReceiptsTick(session: Session): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    const offs = [session.receipts.events.on('receipts', bump), session.receipts.events.on('typing', bump), session.receipts.events.on('presence', bump), session.receipts.events.on('notifySetting', bump)];
    return () => offs.forEach((off) => off());
  }, [session]);
  return tick;
}

/** ✓✓ → "Read" (1:1) or "N unread" opening the read/unread lists (groups) on an own message. */
export function ReceiptBadge(props: { session: Session; m: LocalMessage }) {
  const { session, m } = props;
  const { t } = useTranslation();
  const [lists, setLists] = useState<{ read: string[]; unread: string[] } | null>(null);
  if (!m.own || m.conv === null || m.seq === null) return null;
  const conv = m.conv;
  const seq = m.seq;
  const st = session.receipts.stateOf(conv, seq);
  if (st.kind === 'direct') {
    return st.read ? (
      <span className="receipt read" data-testid="read-receipt">
        {' '}
        · {t('receipts.read')}
      </span>
    ) : null;
  }
  if (st.kind !== 'group') return null;
  const name = (u: string) => session.directory.userName(u);
  return (
    <>
      {' '}
      <button type="button" className="link receipt" data-testid="unread-count" data-unread={st.unread} onClick={() => void session.receipts.members(conv, seq).then(setLists)}>
        {st.unread === 0 ? t('receipts.allRead') : t('receipts.unread', { count: st.unread })}
      </button>
      {lists && (
        <div className="receipt-lists" role="dialog" aria-label={t('receipts.unread', { count: lists.unread.length })} data-testid="receipt-lists">
          <h4>{t('receipts.readBy', { count: lists.read.length })}</h4>
          <ul data-testid="read-list">
            {lists.read.map((u) => (
              <li key={u}>{name(u)}</li>
            ))}
          </ul>
          <h4>{t('receipts.notReadBy', { count: lists.unread.length })}</h4>
          <ul data-testid="unread-list">
            {lists.unread.map((u) => (
              <li key={u}>{name(u)}</li>
            ))}
          </ul>
          <button type="button" className="link" onClick={() => setLists(null)}>
            {t('receipts.close')}
          </button>
        </div>
      )}
    </>
  );
}

/** "Bob is typing…" under the messages. */
export function TypingLine(props: { session: Session; conv: string | null }) {
  const { t } = useTranslation();
  if (!props.conv) return null;
  const users = props.session.receipts.typingIn(props.conv);
  if (users.length === 0) return null;
  const text = users.length === 1 ? t('receipts.typing', { name: props.session.directory.userName(users[0]!) }) : t('receipts.typingMany', { count: users.length });
  return (
    <p className="typing muted" data-testid="typing" aria-live="polite">
      {text}
    </p>
  );
}

/** The online dot and "last seen" of a direct chat's peer (hidden by their privacy: nothing). */
export function PresenceLine(props: { p: PresenceState | undefined }) {
  const { t } = useTranslation();
  const p = props.p;
  if (!p || p.online === null) return null;
  return (
    <span className="presence" data-testid="presence" data-online={p.online}>
      <span className={`dot ${p.online ? 'on' : 'off'}`} aria-hidden="true" /> {p.online ? t('receipts.online') : p.lastSeen ? <span title={dateTime(p.lastSeen)}>{t('receipts.lastSeen', { time: timeOfDay(p.lastSeen) })}</span> : null}
    </span>
  );
}
