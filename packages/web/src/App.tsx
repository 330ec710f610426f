import { useCallback, useEffect, useState } from 'react';
import { AuthScreen } from './screens/Auth.tsx';
import { Shell } from './screens/Shell.tsx';
import { Session } from './session.ts';
import { registerServiceWorker } from './push.ts';
import { navigate, parseRoute, usePath } from './router.ts';
import { t } from './i18n/index.ts';

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  const path = usePath();

  useEffect(() => {
    let live = true;
    Session.restore().then(
      (s) => live && setSession(s),
      (err: unknown) => {
        console.warn('[magpie] could not restore the session', err);
        if (live) setSession(null);
      },
    );
    void registerServiceWorker();
    // A click on a push, handled by the service worker, asks an open window to go there.
    const onSw = (e: MessageEvent) => {
      const d = e.data as { type?: string; url?: string } | null;
      if (d?.type === 'magpie.open' && typeof d.url === 'string' && d.url.startsWith('/')) navigate(d.url);
    };
    navigator.serviceWorker?.addEventListener('message', onSw);
    return () => {
      live = false;
      navigator.serviceWorker?.removeEventListener('message', onSw);
    };
  }, []);

  const signedIn = useCallback((s: Session) => {
    setNotice(null);
    setSession(s);
    navigate('/', { replace: true });
  }, []);

  const signedOut = useCallback((why: string | null) => {
    setSession(null);
    setNotice(why);
    navigate('/login', { replace: true });
  }, []);

  if (session === undefined) {
    return (
      <div className="splash" role="status">
        <img src="/icon.svg" alt="" width={56} height={56} />
        <p>{t('app.name')}</p>
      </div>
    );
  }
  if (session === null) {
    const route = parseRoute(path);
    return <AuthScreen mode={route.name === 'register' ? 'register' : 'login'} notice={notice} onSignedIn={signedIn} />;
  }
  return <Shell key={session.userId} session={session} onSignedOut={signedOut} />;
}
