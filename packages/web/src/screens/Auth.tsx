import { useState, type FormEvent } from 'react';
import { MagpieClientError } from '@magpie/sdk';
import { Session } from '../session.ts';
import { navigate } from '../router.ts';

function describe(err: unknown): string {
  if (err instanceof MagpieClientError) {
    if (err.code === 'bad_credentials') return 'Wrong username or password.';
    if (err.code === 'conflict') return 'That username is taken.';
    if (err.code === 'invalid') return 'Check the fields: usernames are 3–32 letters, digits, “_”, “.” or “-”; passwords at least 8 characters.';
    if (err.code === 'network') return 'Cannot reach the server. Check your connection.';
    if (err.code === 'rate_limited') return 'Too many attempts. Wait a moment and try again.';
    return err.message;
  }
  return String(err);
}

export function AuthScreen(props: { mode: 'login' | 'register'; notice: string | null; onSignedIn(s: Session): void }) {
  const { mode } = props;
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [nickname, setNickname] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = mode === 'login' ? await Session.login(username.trim(), password) : await Session.register(username.trim(), password, nickname.trim() || undefined);
      props.onSignedIn(s);
    } catch (err) {
      setError(describe(err));
      setBusy(false);
    }
  }

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-labelledby="auth-title" data-testid={`${mode}-form`}>
        <div className="auth-brand">
          <img src="/icon.svg" alt="" width={40} height={40} />
          <h1 id="auth-title">{mode === 'login' ? 'Sign in to Magpie' : 'Create your account'}</h1>
        </div>
        {props.notice && (
          <p className="notice" role="status">
            {props.notice}
          </p>
        )}
        <label>
          Username
          <input name="username" autoComplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_.\-]+" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
        </label>
        {mode === 'register' && (
          <label>
            Display name <span className="muted">(optional)</span>
            <input name="nickname" autoComplete="nickname" maxLength={64} value={nickname} onChange={(e) => setNickname(e.target.value)} />
          </label>
        )}
        <label>
          Password
          <input name="password" type="password" autoComplete={mode === 'login' ? 'current-password' : 'new-password'} required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
        <p className="switch">
          {mode === 'login' ? (
            <>
              New here?{' '}
              <a href="/register" onClick={(e) => (e.preventDefault(), navigate('/register'))}>
                Create an account
              </a>
            </>
          ) : (
            <>
              Have an account?{' '}
              <a href="/login" onClick={(e) => (e.preventDefault(), navigate('/login'))}>
                Sign in
              </a>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
