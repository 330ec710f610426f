import { useEffect, useState } from 'react';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { enablePush, pushStatus, unblockHelp, type PushStatus } from '../push.ts';
import { Header, Notice } from './common.tsx';

const PUSH_TEXT: Record<PushStatus, string> = {
  unsupported: 'This browser cannot show notifications for Magpie (it needs service workers and Web Push over HTTPS).',
  unavailable: 'This server does not send Web Push notifications.',
  default: 'Notifications are off. Turn them on to hear about messages while Magpie is closed.',
  denied: 'Notifications are blocked for this site.',
  on: 'Notifications are on for this browser.',
  failed: 'Notifications are allowed, but this browser could not reach its push service. Try again later.',
};

export function SettingsScreen(props: { session: Session; onLogout(): Promise<void> }) {
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
        </section>
      </div>
    </section>
  );
}
