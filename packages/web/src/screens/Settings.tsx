import { useEffect, useState } from 'react';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { enablePush, pushStatus, unblockHelp, type PushStatus } from '../push.ts';
import { Avatar, Header, Notice } from './common.tsx';

const PUSH_TEXT: Record<PushStatus, string> = {
  unsupported: 'This browser cannot show notifications for Magpie (it needs service workers and Web Push over HTTPS).',
  unavailable: 'This server does not send Web Push notifications.',
  default: 'Notifications are off. Turn them on to hear about messages while Magpie is closed.',
  denied: 'Notifications are blocked for this site.',
  on: 'Notifications are on for this browser.',
  failed: 'Notifications are allowed, but this browser could not reach its push service. Try again later.',
};

function AvatarCard(props: { session: Session; avatar: string | null; name: string; onDone(notice: string | null, error: string | null): void }) {
  const { session } = props;
  const [url, setUrl] = useState<string | null>(null);
  const save = async (value: string | null) => {
    try {
      const p = await session.social.updateProfile({ avatar: value });
      session.directory.putUsers([{ id: p.id, username: p.username, nickname: p.nickname, avatar: p.avatar }]);
      setUrl(null);
      props.onDone(value ? 'Picture saved' : 'Picture removed', null);
    } catch (err) {
      props.onDone(null, /invalid|schema/i.test(err instanceof Error ? err.message : '') ? 'The picture must be an http(s) web address.' : err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section className="card" aria-labelledby="avatar-title" data-testid="avatar-settings">
      <h3 id="avatar-title">Picture</h3>
      <p className="row-actions">
        <Avatar name={props.name} id={session.userId} src={props.avatar} size={56} />
      </p>
      {url === null ? (
        <p className="row-actions">
          <button type="button" className="small" onClick={() => setUrl(props.avatar ?? '')} data-testid="change-avatar">
            {props.avatar ? 'Change picture' : 'Add a picture'}
          </button>
          {props.avatar && (
            <button type="button" className="small" onClick={() => void save(null)}>
              Remove picture
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
            Picture address (https://…)
          </label>
          <input id="avatar-url" type="url" placeholder="https://example.com/me.png" value={url} maxLength={2048} onChange={(e) => setUrl(e.target.value)} autoFocus data-testid="avatar-url" />
          <button type="submit" className="primary small" data-testid="save-avatar">
            Save
          </button>
          <button type="button" className="small" onClick={() => setUrl(null)}>
            Cancel
          </button>
        </form>
      )}
    </section>
  );
}

function PasswordCard(props: { session: Session }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    setNotice(null);
    if (next !== repeat) return setError('The new passwords do not match.');
    if (next.length < 8) return setError('The new password must be at least 8 characters long.');
    setBusy(true);
    try {
      await props.session.changePassword(current, next);
      setCurrent('');
      setNext('');
      setRepeat('');
      setError(null);
      setNotice('Password changed.');
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-labelledby="pw-title" data-testid="password-settings">
      <h3 id="pw-title">Password</h3>
      <Notice error={error} notice={notice} />
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          Current password
          <input type="password" name="current-password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} data-testid="current-password" />
        </label>
        <label>
          New password
          <input type="password" name="new-password" autoComplete="new-password" required minLength={8} value={next} onChange={(e) => setNext(e.target.value)} data-testid="new-password" />
        </label>
        <label>
          Repeat the new password
          <input type="password" name="repeat-password" autoComplete="new-password" required minLength={8} value={repeat} onChange={(e) => setRepeat(e.target.value)} data-testid="repeat-password" />
        </label>
        <button type="submit" className="primary small" disabled={busy} data-testid="change-password">
          Change password
        </button>
      </form>
    </section>
  );
}

export function SettingsScreen(props: { session: Session; onLogout(opts?: { all?: boolean }): Promise<void> }) {
  const { session } = props;
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
      setNotice('Saved');
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <section className="settings" aria-label="Settings" data-testid="settings">
      <Header title="Settings" level={2} />
      <div className="scroll">
        <Notice error={error} notice={notice} />
        <section className="card" aria-labelledby="profile-title">
          <h3 id="profile-title">Profile</h3>
          <p>
            Username: <strong data-testid="my-username">@{session.saved.username}</strong>
          </p>
          {nickname === null ? (
            <p>
              Display name: <strong>{me?.nickname || session.saved.username}</strong>{' '}
              <button type="button" className="small" onClick={() => setNickname(me?.nickname ?? '')}>
                Change
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
                Display name
              </label>
              <input id="nick" value={nickname} maxLength={64} required onChange={(e) => setNickname(e.target.value)} autoFocus />
              <button type="submit" className="primary small">
                Save
              </button>
              <button type="button" className="small" onClick={() => setNickname(null)}>
                Cancel
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
        <section className="card" aria-labelledby="notif-title" data-testid="notifications-settings" data-status={push ?? ''}>
          <h3 id="notif-title">Notifications</h3>
          <p>{push ? PUSH_TEXT[push] : 'Checking…'}</p>
          {push === 'denied' && <p className="help">How to turn them on: {unblockHelp()}</p>}
          {(push === 'default' || push === 'failed') && (
            <button type="button" className="primary small" onClick={async () => setPush(await enablePush(session.saved.token))}>
              Turn on notifications
            </button>
          )}
        </section>
        <section className="card" aria-labelledby="conn-title">
          <h3 id="conn-title">Connection</h3>
          <p data-testid="connection-status">Status: {conn.status === 'online' ? 'Connected' : conn.label}</p>
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
            Log out
          </button>
          <p className="muted small-text">Logging out removes this browser’s copy of your messages and stops notifications here.</p>
          <button
            type="button"
            className="danger"
            disabled={busy}
            data-testid="logout-all"
            onClick={async () => {
              if (!confirm('Log out on every device, this one included?')) return;
              setBusy(true);
              await props.onLogout({ all: true });
            }}
          >
            Log out everywhere
          </button>
          <p className="muted small-text">Ends every session of your account, on phones and computers too.</p>
        </section>
      </div>
    </section>
  );
}
