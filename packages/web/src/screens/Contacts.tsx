import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { Avatar, Empty, Header, Link, Notice } from './common.tsx';
import { Icon } from './icons.tsx';
import { useRovingFocus } from '../roving.ts';
import { sdkText } from '../i18n/sdk-text.ts';

/** Remove or block a friend, each after a confirmation. */
function FriendMenu(props: { name: string; onRemove(): void; onBlock(): void }) {
  const [open, setOpen] = useState(false);
  const { t } = useTranslation();
  return (
    <div className="row-menu">
      <button type="button" className="icon-button" aria-haspopup="menu" aria-expanded={open} aria-label={t('list.options', { title: props.name })} data-testid="friend-menu" onClick={() => setOpen(!open)}>
        <Icon name="more" />
      </button>
      {open && (
        <div className="menu" role="menu" onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
          <button
            type="button"
            role="menuitem"
            autoFocus
            data-testid="remove-friend"
            onClick={() => {
              setOpen(false);
              if (confirm(t('contacts.confirmRemove', { name: props.name }))) props.onRemove();
            }}
          >
            {t('contacts.removeFriend')}
          </button>
          <button
            type="button"
            role="menuitem"
            className="danger"
            data-testid="block-user"
            onClick={() => {
              setOpen(false);
              if (confirm(t('contacts.confirmBlock', { name: props.name }))) props.onBlock();
            }}
          >
            {t('contacts.block')}
          </button>
        </div>
      )}
    </div>
  );
}

export function ContactsPane(props: { session: Session; showNotice?: boolean }) {
  const vm = props.session.contacts;
  const s = useVM(vm);
  const { t } = useTranslation();
  const roving = useRovingFocus<HTMLUListElement>('a.row-link', '.row-menu > button');
  return (
    <section className="contacts" aria-label={t('contacts.title')} data-testid="contacts">
      <Header title={t('contacts.title')}>
        <Link to="/search" className="icon-button" label={t('contacts.addFriends')} testId="add-friends">
          <Icon name="userPlus" />
        </Link>
      </Header>
      <Notice error={props.showNotice === false ? null : s.error} notice={props.showNotice === false ? null : sdkText(s.notice)} />
      {s.incoming.length > 0 && (
        <>
          <h2 className="section-title">{t('contacts.requests')}</h2>
          <ul className="rows">
            {s.incoming.map((r) => (
              <li key={r.user.id} className="row static" data-testid="incoming-request" data-user={r.user.username}>
                <Avatar name={r.user.nickname || r.user.username} id={r.user.id} />
                <span className="row-main">
                  <span className="row-title">{r.user.nickname || r.user.username}</span>
                  <span className="row-preview">{r.greeting || t('contacts.wantsToBeFriends', { username: r.user.username })}</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="primary small" onClick={() => void vm.accept(r.user.id)} data-testid="accept">
                    {t('contacts.accept')}
                  </button>
                  <button type="button" className="small" onClick={() => void vm.reject(r.user.id)}>
                    {t('contacts.decline')}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      {s.outgoing.length > 0 && (
        <>
          <h2 className="section-title">{t('contacts.sent')}</h2>
          <ul className="rows">
            {s.outgoing.map((r) => (
              <li key={r.user.id} className="row static" data-testid="outgoing-request">
                <Avatar name={r.user.nickname || r.user.username} id={r.user.id} />
                <span className="row-main">
                  <span className="row-title">{r.user.nickname || r.user.username}</span>
                  <span className="row-preview">{t('contacts.waiting')}</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="small" onClick={() => void vm.cancel(r.user.id)}>
                    {t('contacts.withdraw')}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2 className="section-title">
        {t('contacts.friends')} {s.friends.length > 0 && <span className="muted">{t('contacts.friendsCount', { count: s.friends.length })}</span>}
      </h2>
      {s.loaded && s.friends.length === 0 && <Empty>{t('contacts.noFriends')}</Empty>}
      <ul className="rows" ref={roving.ref} onFocus={roving.onFocus} onKeyDown={roving.onKeyDown} aria-label={t('contacts.friendsLabel')}>
        {s.friends.map((f) => (
          <li key={f.user.id} className="row" data-testid="friend" data-user={f.user.username}>
            <Link to={`/dm/${encodeURIComponent(f.user.id)}`} className="row-link">
              <span className="sr-only">{t('contacts.chatWith')} </span>
              <Avatar name={f.user.nickname || f.user.username} id={f.user.id} src={f.user.avatar} />
              <span className="row-main">
                <span className="row-title">{f.user.nickname || f.user.username}</span>
                <span className="row-preview">@{f.user.username}</span>
              </span>
            </Link>
            <FriendMenu name={f.user.nickname || f.user.username} onRemove={() => void vm.removeFriend(f.user.id)} onBlock={() => void vm.block(f.user.id)} />
          </li>
        ))}
      </ul>
      {s.blocked.length > 0 && (
        <>
          <h2 className="section-title">{t('contacts.blocked')}</h2>
          <ul className="rows">
            {s.blocked.map((b) => (
              <li key={b.user.id} className="row static" data-testid="blocked-user" data-user={b.user.username}>
                <Avatar name={b.user.nickname || b.user.username} id={b.user.id} src={b.user.avatar} />
                <span className="row-main">
                  <span className="row-title">{b.user.nickname || b.user.username}</span>
                  <span className="row-preview">@{b.user.username}</span>
                </span>
                <span className="row-actions">
                  <button type="button" className="small" onClick={() => void vm.unblock(b.user.id)} data-testid="unblock">
                    {t('search.unblock')}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
