import { useCallback, useEffect, useState } from 'react';
import type { Notification, UserService } from '@magpie/sdk';
import { useTranslation } from 'react-i18next';
import type { Session } from '../session.ts';
import { Empty, Header, Notice } from './common.tsx';
import { dateTime } from '../i18n/format.ts';

/**
 * Service accounts' notifications, apart from chat: the services with mute / unsubscribe and
 * unread counts, and the notifications newest first (the SDK's NotificationInbox keeps them in
 * step: pulled on connect, live frames merged). Opening the tab marks each service read.
 */
export function NotificationsScreen(props: { session: Session }) {
  const { api, inbox } = props.session.notifications;
  const { t } = useTranslation();
  const [items, setItems] = useState<Notification[]>(() => inbox.list());
  const [services, setServices] = useState<UserService[]>([]);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      setServices(await api.services());
    } catch {
      setError(t('notifications.failed'));
    }
  }, [api, t]);

  useEffect(() => {
    const off = inbox.on('notifications', () => {
      setItems(inbox.list());
      void reload();
    });
    void inbox.sync().then(() => setItems(inbox.list()));
    void reload();
    return off;
  }, [inbox, reload]);

  // Seen here: mark each service read up to its newest notification.
  useEffect(() => {
    const unread = services.filter((s) => s.unread > 0 && !s.unsubscribed);
    if (unread.length === 0) return;
    void Promise.all(unread.map((s) => api.markRead(s.id, s.lastSeq))).then((updated) => setServices((list) => list.map((s) => updated.find((u) => u.id === s.id) ?? s)));
  }, [api, services]);

  const change = async (s: UserService, patch: { muted?: boolean; unsubscribed?: boolean }) => {
    setError(null);
    try {
      const u = patch.muted !== undefined ? await api.setMuted(s.id, patch.muted) : await api.setUnsubscribed(s.id, patch.unsubscribed!);
      setServices((list) => list.map((x) => (x.id === u.id ? u : x)));
    } catch {
      setError(t('notifications.failed'));
    }
  };

  const nameOf = (id: string) => services.find((s) => s.id === id)?.name ?? id;
  return (
    <section className="notifications" aria-label={t('notifications.title')} data-testid="notifications">
      <Header title={t('notifications.title')} back="/" />
      <Notice error={error} />
      {services.length > 0 && (
        <ul className="notification-services" aria-label={t('notifications.services')}>
          {services.map((s) => (
            <li key={s.id} data-testid="notification-service" data-service={s.id}>
              {s.avatar && <img src={s.avatar} alt="" width={28} height={28} />}
              <strong>{s.name}</strong>
              {s.muted && <span className="tag">{t('notifications.muted')}</span>}
              {s.unsubscribed && <span className="tag">{t('notifications.unsubscribed')}</span>}
              <button type="button" className="link" onClick={() => void change(s, { muted: !s.muted })}>
                {s.muted ? t('notifications.unmute') : t('notifications.mute')}
              </button>
              <button type="button" className="link" onClick={() => void change(s, { unsubscribed: !s.unsubscribed })}>
                {s.unsubscribed ? t('notifications.subscribe') : t('notifications.unsubscribe')}
              </button>
            </li>
          ))}
        </ul>
      )}
      {items.length === 0 ? (
        <Empty>{t('notifications.empty')}</Empty>
      ) : (
        <ol className="notification-list">
          {items.map((n) => (
            <li key={n.id} data-testid="notification" data-service={n.service}>
              <div className="notification-head">
                <span className="notification-service">{nameOf(n.service)}</span>
                <time dateTime={new Date(n.createdAt).toISOString()}>{dateTime(n.createdAt)}</time>
              </div>
              <strong className="notification-title">{n.title}</strong>
              {n.body && <p>{n.body}</p>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
