import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { messagePreview, type LocalMessage } from '@magpie/sdk';
import { useVM } from '../hooks.ts';
import type { Session } from '../session.ts';
import { bundlePath, chatPath, navigate } from '../router.ts';
import { Header, Notice } from './common.tsx';
import { Linkified } from '../linkify.tsx';
import { dateTime, timeOfDay } from '../i18n/format.ts';
import { currentLanguage } from '../i18n/index.ts';
import { MessageMedia, RICH_KINDS } from '../media/MessageMedia.tsx';

/** What a merged forward carries (protocol `BundleBody`), read defensively: the card may come from a newer client. */
interface BundleItem {
  sender: string;
  kind: string;
  body: unknown;
  time: number;
}
interface Bundle {
  title: string;
  items: BundleItem[];
}

function asBundle(body: unknown): Bundle | null {
  const b = body as { title?: unknown; items?: unknown } | null;
  if (!b || !Array.isArray(b.items)) return null;
  const items = b.items.filter((x): x is BundleItem => !!x && typeof x === 'object' && typeof (x as BundleItem).sender === 'string' && typeof (x as BundleItem).kind === 'string');
  return { title: typeof b.title === 'string' ? b.title : '', items };
}

/** The card at `path` inside the bundle message (each index picks a nested card); null when the path leads nowhere. */
export function nestedBundle(body: unknown, path: readonly number[]): Bundle | null {
  let b = asBundle(body);
  for (const i of path) {
    const item = b?.items[i];
    if (!item || item.kind !== 'bundle') return null;
    b = asBundle(item.body);
  }
  return b;
}

type Load = { state: 'loading' } | { state: 'missing' } | { state: 'ready'; bundle: Bundle };

/**
 * A merged-forward card opened: the bundled messages with sender, time and content (media
 * loads through the bundle's own re-authorization: the uploads are referenced by the card's
 * message in this conversation). A nested card opens one level deeper (`?in=…`).
 */
export function BundleScreen(props: { session: Session; conv: string; seq: number; path: number[] }) {
  const { session, conv, seq, path } = props;
  const { t } = useTranslation();
  useVM(session.directory);
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const pathKey = path.join('.');

  useEffect(() => {
    let live = true;
    setLoad({ state: 'loading' });
    void session.client.loadHistory(conv, { after: seq - 1, limit: 1 }).then(
      (w) => {
        if (!live) return;
        const m = w.messages.find((x) => x.seq === seq);
        const bundle = m && m.kind === 'bundle' ? nestedBundle(m.body, path) : null;
        setLoad(bundle ? { state: 'ready', bundle } : { state: 'missing' });
      },
      () => live && setLoad({ state: 'missing' }),
    );
    return () => {
      live = false;
    };
    // path is compared by its key
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session, conv, seq, pathKey]);

  const back = path.length > 0 ? bundlePath(conv, seq, path.slice(0, -1)) : chatPath(conv);
  const title = load.state === 'ready' ? load.bundle.title || t('bundle.title') : t('bundle.title');
  return (
    <section className="bundle-screen" data-testid="bundle-screen" data-depth={path.length}>
      <Header title={title} back={back} subtitle={load.state === 'ready' ? t('bundle.count', { count: load.bundle.items.length }) : undefined} />
      {load.state === 'loading' && <div className="empty">{t('bundle.loading')}</div>}
      {load.state === 'missing' && <Notice notice={t('bundle.missing')} />}
      {load.state === 'ready' && (
        <ol className="bundle-items" aria-label={title}>
          {load.bundle.items.map((item, i) => (
            <BundleRow key={i} session={session} conv={conv} seq={seq} path={path} index={i} item={item} />
          ))}
        </ol>
      )}
    </section>
  );
}

function BundleRow(props: { session: Session; conv: string; seq: number; path: number[]; index: number; item: BundleItem }) {
  const { session, item } = props;
  const { t } = useTranslation();
  const name = session.directory.userName(item.sender);
  const inner = item.kind === 'bundle' ? asBundle(item.body) : null;
  // A stand-in message for the media views: the uploads belong to the card's conversation.
  const asMessage: LocalMessage = {
    clientMsgId: `bundle:${props.conv}:${props.seq}:${[...props.path, props.index].join('.')}`,
    id: null,
    conv: props.conv,
    to: null,
    seq: null,
    sender: item.sender,
    kind: item.kind,
    body: item.body,
    time: item.time,
    state: 'received',
    deliveredCount: null,
    own: false,
    error: null,
  };
  const text = (item.body as { text?: unknown } | null)?.text;
  return (
    <li className="bundle-item" data-testid="bundle-item" data-kind={item.kind}>
      <div className="bundle-item-head">
        <b data-testid="bundle-sender">{name}</b>{' '}
        <time dateTime={new Date(item.time).toISOString()} title={dateTime(item.time)} data-testid="bundle-time">
          {dateTime(item.time) || timeOfDay(item.time)}
        </time>
      </div>
      <div className="bundle-item-body">
        {inner ? (
          <button type="button" className="msg-bundle link" data-testid="bundle-nested" onClick={() => navigate(bundlePath(props.conv, props.seq, [...props.path, props.index]))}>
            {t('chat.bundleOpen', { title: inner.title, count: inner.items.length })}
          </button>
        ) : RICH_KINDS.has(item.kind) ? (
          <MessageMedia session={session} message={asMessage} localUrl={null} onOpenImage={() => undefined} />
        ) : item.kind === 'text' && typeof text === 'string' ? (
          <span className="msg-text">
            <Linkified text={text} />
          </span>
        ) : (
          <span className="msg-text">{messagePreview(item.kind, item.body, currentLanguage())}</span>
        )}
      </div>
    </li>
  );
}
