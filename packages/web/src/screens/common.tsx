import type { MouseEvent, ReactNode } from 'react';
import { navigate } from '../router.ts';
import { Icon } from './icons.tsx';
import { t } from '../i18n/index.ts';

/** A link that routes inside the app (keyboard: Enter; middle-click still opens a tab). */
export function Link(props: { to: string; className?: string; children: ReactNode; label?: string; testId?: string; current?: boolean }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} className={props.className} onClick={onClick} aria-label={props.label} data-testid={props.testId} aria-current={props.current ? 'page' : undefined}>
      {props.children}
    </a>
  );
}

const COLORS = ['#1f6feb', '#8250df', '#bf3989', '#cf222e', '#bc4c00', '#4d2d00', '#1a7f37', '#0969da', '#6e7781'];

export function Avatar(props: { name: string; id: string; group?: boolean; size?: number; src?: string | null }) {
  let h = 0;
  for (const c of props.id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const size = props.size ?? 40;
  // Only http(s) pictures (the server accepts nothing else); the initials stay the fallback.
  if (props.src && /^https?:\/\//i.test(props.src))
    return <img className={`avatar${props.group ? ' group' : ''}`} src={props.src} alt="" width={size} height={size} referrerPolicy="no-referrer" data-testid="avatar-image" />;
  const initials = props.name.trim().slice(0, props.group ? 2 : 1).toUpperCase() || '?';
  return (
    <span className={`avatar${props.group ? ' group' : ''}`} style={{ background: COLORS[h % COLORS.length], width: size, height: size, fontSize: size * 0.4 }} aria-hidden="true">
      {initials}
    </span>
  );
}

/** Back; `badge`: unread messages elsewhere (a phone shows one pane at a time). */
export function BackButton(props: { to: string; label?: string; badge?: number }) {
  const n = props.badge ?? 0;
  return (
    <Link to={props.to} className="icon-button back" label={n > 0 ? t('app.backUnread', { label: props.label ?? t('app.back'), count: n }) : (props.label ?? t('app.back'))}>
      <Icon name="back" size={24} />
      {n > 0 && (
        <span className="badge corner" data-testid="back-unread">
          {n > 99 ? '99+' : n}
        </span>
      )}
    </Link>
  );
}

export function Header(props: { title: ReactNode; back?: string; backBadge?: number; children?: ReactNode; subtitle?: ReactNode; level?: 1 | 2 }) {
  const H = props.level === 2 ? 'h2' : 'h1';
  return (
    <header className="pane-header">
      {props.back && <BackButton to={props.back} badge={props.backBadge} />}
      <div className="pane-title">
        <H>{props.title}</H>
        {props.subtitle && <div className="subtitle">{props.subtitle}</div>}
      </div>
      <div className="pane-actions">{props.children}</div>
    </header>
  );
}

export function Empty(props: { children: ReactNode }) {
  return <div className="empty">{props.children}</div>;
}

export function Notice(props: { error?: string | null; notice?: string | null }) {
  if (props.error)
    return (
      <p className="error" role="alert">
        {props.error}
      </p>
    );
  if (props.notice)
    return (
      <p className="notice" role="status">
        {props.notice}
      </p>
    );
  return null;
}
