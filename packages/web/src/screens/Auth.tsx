import { useState, type FormEvent } from 'react';
import { MagpieClientError } from '@magpie/sdk';
import { Session } from '../session.ts';
import { navigate } from '../router.ts';
import { useTranslation } from 'react-i18next';
import { t } from '../i18n/index.ts';

function describe(err: unknown): string {
  if (err instanceof MagpieClientError) {
    if (err.code === 'bad_credentials') return t('auth.errBadCredentials');
    if (err.code === 'conflict') return t('auth.errTaken');
    if (err.code === 'invalid') return t('auth.errInvalid');
    if (err.code === 'network') return t('auth.errNetwork');
    if (err.code === 'rate_limited') return t('auth.errRateLimited');
    return err.message;
  }
  return String(err);
}

export function AuthScreen(props: { mode: 'login' | 'register'; notice: string | null; onSignedIn(s: Session): void }) {
  const { mode } = props;
  const { t } = useTranslation();
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
          <h1 id="auth-title">{mode === 'login' ? t('auth.signInTitle') : t('auth.registerTitle')}</h1>
        </div>
        {props.notice && (
          <p className="notice" role="status">
            {props.notice}
          </p>
        )}
        <label>
          {t('auth.username')}
          <input name="username" autoComplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_.\-]+" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
        </label>
        {mode === 'register' && (
          <label>
            {t('auth.displayName')} <span className="muted">{t('auth.optional')}</span>
            <input name="nickname" autoComplete="nickname" maxLength={64} value={nickname} onChange={(e) => setNickname(e.target.value)} />
          </label>
        )}
        <label>
          {t('auth.password')}
          <input name="password" type="password" autoComplete={mode === 'login' ? 'current-password' : 'new-password'} required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t('app.pleaseWait') : mode === 'login' ? t('auth.signIn') : t('auth.createAccount')}
        </button>
        <p className="switch">
          {mode === 'login' ? (
            <>
              {t('auth.newHere')}{' '}
              <a href="/register" onClick={(e) => (e.preventDefault(), navigate('/register'))}>
                {t('auth.createLink')}
              </a>
            </>
          ) : (
            <>
              {t('auth.haveAccount')}{' '}
              <a href="/login" onClick={(e) => (e.preventDefault(), navigate('/login'))}>
                {t('auth.signInLink')}
              </a>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
