import { useEffect, useState } from 'react';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { enablePush, pushStatus, unblockHelp, type PushStatus } from '../push.ts';
import { useTranslation } from 'react-i18next';
import { Avatar, Header, Notice } from './common.tsx';
import { LANGUAGE_NAMES, LANGUAGES, browserLanguage, savedLanguage, setLanguage, type Language } from '../i18n/index.ts';
import { connectionText } from '../i18n/sdk-text.ts';

/**
 * The UI language: the browser's, or one picked here (kept on this device). Picking one
 * reloads the app, so that texts the SDK's view models already made are made again in it.
 */
function LanguageCard() {
  const { t } = useTranslation();
  const [choice, setChoice] = useState<Language | ''>(() => savedLanguage() ?? '');
  return (
    <section className="card" aria-labelledby="lang-title" data-testid="language-settings">
      <h3 id="lang-title">{t('settings.language')}</h3>
      <label className="sr-only" htmlFor="language">
        {t('settings.languageLabel')}
      </label>
      <select
        id="language"
        value={choice}
        data-testid="language"
        onChange={(e) => {
          const v = e.target.value as Language | '';
          setChoice(v);
          void setLanguage(v || null).then(() => location.reload());
        }}
      >
        <option value="">{t('settings.languageAuto', { name: LANGUAGE_NAMES[browserLanguage()] })}</option>
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {LANGUAGE_NAMES[l]}
          </option>
        ))}
      </select>
    </section>
  );
}

function AvatarCard(props: { session: Session; avatar: string | null; name: string; onDone(notice: string | null, error: string | null): void }) {
  const { session } = props;
  const { t } = useTranslation();
  const [url, setUrl] = useState<string | null>(null);
  const save = async (value: string | null) => {
    try {
      const p = await session.social.updateProfile({ avatar: value });
      session.directory.putUsers([{ id: p.id, username: p.username, nickname: p.nickname, avatar: p.avatar }]);
      setUrl(null);
      props.onDone(value ? t('settings.pictureSaved') : t('settings.pictureRemoved'), null);
    } catch (err) {
      props.onDone(null, /invalid|schema/i.test(err instanceof Error ? err.message : '') ? t('settings.pictureInvalid') : err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section className="card" aria-labelledby="avatar-title" data-testid="avatar-settings">
      <h3 id="avatar-title">{t('settings.picture')}</h3>
      <div className="avatar-row">
        <Avatar name={props.name} id={session.userId} src={props.avatar} size={56} />
        {url === null ? (
          <p className="avatar-actions">
            <button type="button" className="small" onClick={() => setUrl(props.avatar ?? '')} data-testid="change-avatar">
              {props.avatar ? t('settings.changePicture') : t('settings.addPicture')}
            </button>
            {props.avatar && (
              <button type="button" className="small" onClick={() => void save(null)}>
                {t('settings.removePicture')}
              </button>
            )}
          </p>
        ) : (
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void save(url.trim() || null);
            }}
          >
            <label className="sr-only" htmlFor="avatar-url">
              {t('settings.pictureAddress')}
            </label>
            <input id="avatar-url" type="url" placeholder="https://example.com/me.png" value={url} maxLength={2048} onChange={(e) => setUrl(e.target.value)} autoFocus data-testid="avatar-url" />
            <button type="submit" className="primary small" data-testid="save-avatar">
              {t('app.save')}
            </button>
            <button type="button" className="small" onClick={() => setUrl(null)}>
              {t('app.cancel')}
            </button>
          </form>
        )}
      </div>
    </section>
  );
}

function PasswordCard(props: { session: Session }) {
  const { t } = useTranslation();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    setNotice(null);
    if (next !== repeat) return setError(t('settings.passwordMismatch'));
    if (next.length < 8) return setError(t('settings.passwordShort'));
    setBusy(true);
    try {
      await props.session.changePassword(current, next);
      setCurrent('');
      setNext('');
      setRepeat('');
      setError(null);
      setNotice(t('settings.passwordChanged'));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-labelledby="pw-title" data-testid="password-settings">
      <h3 id="pw-title">{t('auth.password')}</h3>
      <Notice error={error} notice={notice} />
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          {t('settings.currentPassword')}
          <input type="password" name="current-password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} data-testid="current-password" />
        </label>
        <label>
          {t('settings.newPassword')}
          <input type="password" name="new-password" autoComplete="new-password" required minLength={8} value={next} onChange={(e) => setNext(e.target.value)} data-testid="new-password" />
        </label>
        <label>
          {t('settings.repeatPassword')}
          <input type="password" name="repeat-password" autoComplete="new-password" required minLength={8} value={repeat} onChange={(e) => setRepeat(e.target.value)} data-testid="repeat-password" />
        </label>
        <button type="submit" className="primary small" disabled={busy} data-testid="change-password">
          {t('settings.changePassword')}
        </button>
      </form>
    </section>
  );
}

export function SettingsScreen(props: { session: Session; onLogout(opts?: { all?: boolean }): Promise<void> }) {
  const { session } = props;
  const { t } = useTranslation();
  const conn = useVM(session.connection);
  const dir = useVM(session.directory);
  const me = dir.users[session.userId];
  const [nickname, setNickname] = useState<string | null>(null);
  const [push, setPush] = useState<PushStatus | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void pushStatus().then(setPush);
    session.social.profile().then(
      (p) => session.directory.putUsers([{ id: p.id, username: p.username, nickname: p.nickname, avatar: p.avatar }]),
      () => undefined,
    );
  }, [session]);

  const saveNickname = async () => {
    if (nickname === null) return;
    try {
      const p = await session.social.updateProfile({ nickname: nickname.trim() });
      session.directory.putUsers([{ id: p.id, username: p.username, nickname: p.nickname, avatar: p.avatar }]);
      setNickname(null);
      setNotice(t('app.saved'));
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <section className="settings" aria-label={t('settings.title')} data-testid="settings">
      <Header title={t('settings.title')} level={2} />
      <div className="scroll">
        <Notice error={error} notice={notice} />
        <section className="card" aria-labelledby="profile-title">
          <h3 id="profile-title">{t('settings.profile')}</h3>
          <p>
            {t('settings.username')} <strong data-testid="my-username">@{session.saved.username}</strong>
          </p>
          {nickname === null ? (
            <p>
              {t('settings.displayName')} <strong>{me?.nickname || session.saved.username}</strong>{' '}
              <button type="button" className="small" onClick={() => setNickname(me?.nickname ?? '')}>
                {t('settings.change')}
              </button>
            </p>
          ) : (
            <form
              className="inline-form"
              onSubmit={(e) => {
                e.preventDefault();
                void saveNickname();
              }}
            >
              <label className="sr-only" htmlFor="nick">
                {t('settings.displayNameLabel')}
              </label>
              <input id="nick" value={nickname} maxLength={64} required onChange={(e) => setNickname(e.target.value)} autoFocus />
              <button type="submit" className="primary small">
                {t('app.save')}
              </button>
              <button type="button" className="small" onClick={() => setNickname(null)}>
                {t('app.cancel')}
              </button>
            </form>
          )}
        </section>
        <AvatarCard
          session={session}
          avatar={me?.avatar ?? null}
          name={me?.nickname || session.saved.username}
          onDone={(n, e) => {
            setNotice(n);
            setError(e);
          }}
        />
        <PasswordCard session={session} />
        <LanguageCard />
        <section className="card" aria-labelledby="notif-title" data-testid="notifications-settings" data-status={push ?? ''}>
          <h3 id="notif-title">{t('settings.notifications')}</h3>
          <p>{push ? t(`push.${push}`) : t('push.checking')}</p>
          {push === 'denied' && <p className="help">{t('push.howTo', { help: unblockHelp() })}</p>}
          {(push === 'default' || push === 'failed') && (
            <button type="button" className="primary small" onClick={async () => setPush(await enablePush(session.saved.token))}>
              {t('push.turnOn')}
            </button>
          )}
        </section>
        <section className="card" aria-labelledby="conn-title">
          <h3 id="conn-title">{t('settings.connection')}</h3>
          <p data-testid="connection-status">{t('conn.status', { status: connectionText(conn) })}</p>
        </section>
        <section className="card">
          <button
            type="button"
            className="danger"
            disabled={busy}
            data-testid="logout"
            onClick={async () => {
              setBusy(true);
              await props.onLogout();
            }}
          >
            {t('settings.logout')}
          </button>
          <p className="muted small-text">{t('settings.logoutNote')}</p>
          <button
            type="button"
            className="danger"
            disabled={busy}
            data-testid="logout-all"
            onClick={async () => {
              if (!confirm(t('settings.confirmLogoutAll'))) return;
              setBusy(true);
              await props.onLogout({ all: true });
            }}
          >
            {t('settings.logoutAll')}
          </button>
          <p className="muted small-text">{t('settings.logoutAllNote')}</p>
        </section>
      </div>
    </section>
  );
}
