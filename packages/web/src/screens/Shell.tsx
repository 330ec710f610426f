import { useEffect, useState, type ReactNode } from 'react';
import { useMediaQuery, useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { parseRoute, usePath, type Route } from '../router.ts';
import { BundleScreen } from './Bundle.tsx';
import { ChatScreen } from './Chat.tsx';
import { ContactsPane } from './Contacts.tsx';
import { ConversationListPane } from './ConversationList.tsx';
import { GroupInfoScreen, NewGroupScreen } from './Groups.tsx';
import { SearchScreen } from './Search.tsx';
import { SettingsScreen } from './Settings.tsx';
import { WalletScreen } from './Wallet.tsx';
import { NotificationsScreen } from './Notifications.tsx';
import { Empty, Link } from './common.tsx';
import { Icon } from './icons.tsx';
import { useTranslation } from 'react-i18next';
import { t as translate } from '../i18n/index.ts';
import { connectionText, offlineReasonText, retryCountdownText } from '../i18n/sdk-text.ts';

/** Epoch ms, re-rendered every second while `active` (the banner's countdown). */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [active]);
  return now;
}

function ConnectionBanner(props: { session: Session }) {
  const c = useVM(props.session.connection);
  const { t } = useTranslation();
  const offline = c.status === 'offline' || c.status === 'waiting_for_network';
  const now = useNow(offline && c.nextRetryAt !== null);
  if (c.status === 'online') return <div className="conn-banner hidden" role="status" aria-live="polite" data-testid="connection" data-status="online" />;
  // The reason is announced once (aria-live); the ticking countdown is not, or a screen reader would read it every second.
  const countdown = offline && c.offlineReason ? retryCountdownText(c.nextRetryAt, now) : '';
  return (
    <div className={`conn-banner ${c.status}`} data-testid="connection" data-status={c.status} data-reason={c.offlineReason ?? ''}>
      <span className="dot" aria-hidden="true" />
      <span role="status" aria-live="polite">{countdown && c.offlineReason ? offlineReasonText(c.offlineReason) : connectionText(c)}</span>
      {countdown && (
        <span data-testid="retry-countdown" aria-live="off">
          {' — '}
          {countdown}
        </span>
      )}
      {offline && (
        <button type="button" className="link" data-testid="retry-now" onClick={() => void props.session.connection.refresh()}>
          {t('conn.retryNow')}
        </button>
      )}
    </div>
  );
}

function Tabs(props: { session: Session; route: Route }) {
  const list = useVM(props.session.conversations);
  const contacts = useVM(props.session.contacts);
  const r = props.route.name;
  const { t } = useTranslation();
  const chatsActive = r === 'chats' || r === 'chat' || r === 'bundle' || r === 'dm' || r === 'group' || r === 'newGroup';
  return (
    <nav className="tabs" aria-label={t('tabs.main')}>
      <Link to="/" className={`tab${chatsActive ? ' active' : ''}`} current={chatsActive} testId="tab-chats">
        <span className="tab-icon"><Icon name="chat" size={22} /></span>
        <span className="tab-label">{t('tabs.chats')}</span>
        {list.totalUnread > 0 && (
          <span className="badge" data-testid="total-unread" aria-label={t('tabs.unread', { count: list.totalUnread })}>
            {list.totalUnread > 99 ? '99+' : list.totalUnread}
          </span>
        )}
      </Link>
      <Link to="/contacts" className={`tab${r === 'contacts' || r === 'search' ? ' active' : ''}`} current={r === 'contacts'} testId="tab-contacts">
        <span className="tab-icon"><Icon name="users" size={22} /></span>
        <span className="tab-label">{t('tabs.contacts')}</span>
        {contacts.incoming.length > 0 && (
          <span className="badge" aria-label={t('tabs.requests', { count: contacts.incoming.length })}>
            {contacts.incoming.length}
          </span>
        )}
      </Link>
      <Link to="/notifications" className={`tab${r === 'notifications' ? ' active' : ''}`} current={r === 'notifications'} testId="tab-notifications">
        <span className="tab-icon"><Icon name="bell" size={22} /></span>
        <span className="tab-label">{t('notifications.tab')}</span>
      </Link>
      <Link to="/wallet" className={`tab${r === 'wallet' ? ' active' : ''}`} current={r === 'wallet'} testId="tab-wallet">
        <span className="tab-icon"><Icon name="wallet" size={22} /></span>
        <span className="tab-label">{t('wallet.tab')}</span>
      </Link>
      <Link to="/settings" className={`tab${r === 'settings' ? ' active' : ''}`} current={r === 'settings'} testId="tab-settings">
        <span className="tab-icon"><Icon name="settings" size={22} /></span>
        <span className="tab-label">{t('tabs.settings')}</span>
      </Link>
    </nav>
  );
}

export function Shell(props: { session: Session; onSignedOut(why: string | null): void }) {
  const { session } = props;
  const route = parseRoute(usePath());
  const wide = useMediaQuery('(min-width: 900px)');
  const [pushNotice, setPushNotice] = useState<string | null>(null);
  const { t } = useTranslation();

  useEffect(() => {
    const off = session.client.on('state', ({ state }) => {
      if (state === 'kicked' || state === 'logged_out') {
        void session.forget({ clear: state === 'logged_out' }).then(() => props.onSignedOut(state === 'kicked' ? translate('auth.kicked') : translate('auth.sessionEnded')));
      }
    });
    const q = new URLSearchParams(location.search).get('push');
    if (q) setPushNotice(translate('shell.pushMismatch'));
    return off;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session]);

  const logout = async (opts: { all?: boolean } = {}) => {
    await session.logout(opts);
    props.onSignedOut(null);
  };

  let main: ReactNode = null;
  switch (route.name) {
    case 'chat':
      main = <ChatScreen key={`c:${route.conv}`} session={session} target={{ conv: route.conv }} wide={wide} />;
      break;
    case 'dm':
      main = <ChatScreen key={`dm:${route.peer}`} session={session} target={{ peer: route.peer }} wide={wide} />;
      break;
    case 'bundle':
      main = <BundleScreen key={`b:${route.conv}:${route.seq}:${route.path.join('.')}`} session={session} conv={route.conv} seq={route.seq} path={route.path} />;
      break;
    case 'group':
      main = <GroupInfoScreen key={route.conv} session={session} conv={route.conv} />;
      break;
    case 'newGroup':
      main = <NewGroupScreen session={session} />;
      break;
    case 'search':
      main = <SearchScreen session={session} />;
      break;
    case 'settings':
      main = <SettingsScreen session={session} onLogout={logout} />;
      break;
    case 'wallet':
      main = <WalletScreen session={session} />;
      break;
    case 'notifications':
      main = <NotificationsScreen session={session} />;
      break;
    default:
      main = null;
  }
  const listPane = route.name === 'contacts' || route.name === 'search' ? <ContactsPane session={session} showNotice={route.name !== 'search'} /> : <ConversationListPane session={session} route={route} />;
  const showList = wide || (main === null);

  // The skip link jumps over the tabs to what the screen is about: the open screen, else the list.
  const skipTo = main !== null ? 'main' : 'list';
  return (
    <div className={`shell ${wide ? 'wide' : 'narrow'}`}>
      <a
        href={`#${skipTo}`}
        className="skip-link"
        data-testid="skip-link"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById(skipTo)?.focus();
        }}
      >
        {t('app.skip')}
      </a>
      <ConnectionBanner session={session} />
      {pushNotice && (
        <div className="toast" role="status">
          {pushNotice}{' '}
          <button type="button" className="link" onClick={() => setPushNotice(null)}>
            {t('app.dismiss')}
          </button>
        </div>
      )}
      <div className="shell-body">
        {(wide || main === null || route.name === 'settings' || route.name === 'wallet' || route.name === 'notifications') && <Tabs session={session} route={route} />}
        {showList && (
          <aside className="list-pane" id="list" tabIndex={-1}>
            {listPane}
          </aside>
        )}
        {(wide || main !== null) && (
          <main className="main-pane" id="main" tabIndex={-1}>
            {main ?? <Empty>{route.name === 'contacts' ? t('shell.pickContact') : t('shell.pickConversation')}</Empty>}
          </main>
        )}
      </div>
    </div>
  );
}
