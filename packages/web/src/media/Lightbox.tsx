import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { ImageBody, LocalMessage } from '@magpie/sdk';
import type { Session } from '../session.ts';
import { Icon } from '../screens/icons.tsx';
import { placeholderUrl, useMediaUrl } from './media-urls.ts';

/**
 * One image of the chat at full size: the large thumbnail (the original for animated
 * images), zoom (button, click, + / −), previous/next among the chat's images (buttons,
 * ← / →, swipe), Escape or the close button to leave. Focus stays inside while it is open.
 */
export function Lightbox(props: { session: Session; images: LocalMessage[]; index: number; onIndex(i: number): void; onClose(): void }) {
  const { images, index } = props;
  const { t } = useTranslation();
  const m = images[index]!;
  const body = m.body as ImageBody;
  const large = body.variants?.some((v) => v.name === 'large') && !body.animated;
  const url = useMediaUrl(props.session.media, body.upload, large ? 'large' : 'original');
  const [zoom, setZoom] = useState(1);
  const close = useRef<HTMLButtonElement>(null);
  const touch = useRef<number | null>(null);
  const hasPrev = index > 0;
  const hasNext = index < images.length - 1;
  const go = (d: number) => {
    const i = index + d;
    if (i >= 0 && i < images.length) {
      setZoom(1);
      props.onIndex(i);
    }
  };
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    close.current?.focus();
    return () => prev?.focus?.();
  }, []);
  // Keys work wherever the focus is (a button that became disabled drops it to the body).
  const keys = useRef<(e: KeyboardEvent) => void>(() => undefined);
  keys.current = (e: KeyboardEvent) => {
    if (e.key === 'Escape') props.onClose();
    else if (e.key === 'ArrowLeft') go(-1);
    else if (e.key === 'ArrowRight') go(1);
    else if (e.key === '+' || e.key === '=') setZoom((z) => Math.min(4, z * 2));
    else if (e.key === '-') setZoom((z) => Math.max(1, z / 2));
    else return;
    e.preventDefault();
  };
  useEffect(() => {
    const on = (e: KeyboardEvent) => keys.current(e);
    document.addEventListener('keydown', on);
    return () => document.removeEventListener('keydown', on);
  }, []);
  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === 'Tab') {
      // Keep focus inside the dialog.
      const els = [...e.currentTarget.querySelectorAll<HTMLElement>('button:not([disabled])')];
      const i = els.indexOf(document.activeElement as HTMLElement);
      const next = e.shiftKey ? (i <= 0 ? els.length - 1 : i - 1) : (i + 1) % els.length;
      e.preventDefault();
      els[next]?.focus();
    }
  };
  const ph = placeholderUrl(body.placeholder);
  return (
    <div className="lightbox" role="dialog" aria-modal="true" aria-label={t('media.viewer', { n: index + 1, total: images.length })} onKeyDown={onKey} data-testid="lightbox" data-index={index}>
      <div className="lightbox-bar">
        <span className="lightbox-count" data-testid="lightbox-count">
          {index + 1} / {images.length}
        </span>
        <button type="button" className="icon-button" onClick={() => setZoom((z) => Math.max(1, z / 2))} disabled={zoom <= 1} aria-label={t('media.zoomOut')} data-testid="zoom-out">
          <Icon name="minus" />
        </button>
        <button type="button" className="icon-button" onClick={() => setZoom((z) => Math.min(4, z * 2))} disabled={zoom >= 4} aria-label={t('media.zoomIn')} data-testid="zoom-in">
          <Icon name="plus" />
        </button>
        <button type="button" className="icon-button" ref={close} onClick={props.onClose} aria-label={t('media.close')} data-testid="lightbox-close">
          <Icon name="close" />
        </button>
      </div>
      <div
        className="lightbox-stage"
        onTouchStart={(e) => (touch.current = e.touches[0]?.clientX ?? null)}
        onTouchEnd={(e) => {
          const x = e.changedTouches[0]?.clientX;
          if (touch.current !== null && x !== undefined && zoom === 1 && Math.abs(x - touch.current) > 50) go(x < touch.current ? 1 : -1);
          touch.current = null;
        }}
      >
        {url ? (
          <img
            key={m.clientMsgId}
            src={url}
            alt={body.caption ?? t('media.image')}
            className={zoom > 1 ? 'zoomed' : ''}
            style={{ transform: `scale(${zoom})`, backgroundImage: ph ? `url("${ph}")` : undefined }}
            onClick={() => setZoom((z) => (z > 1 ? 1 : 2))}
            data-testid="lightbox-image"
            data-zoom={zoom}
          />
        ) : (
          ph && <img src={ph} alt="" className="lightbox-ph" />
        )}
      </div>
      {body.caption && <p className="lightbox-caption">{body.caption}</p>}
      <button type="button" className="icon-button lightbox-prev" onClick={() => go(-1)} disabled={!hasPrev} aria-label={t('media.previous')} data-testid="lightbox-prev">
        <Icon name="back" />
      </button>
      <button type="button" className="icon-button lightbox-next" onClick={() => go(1)} disabled={!hasNext} aria-label={t('media.next')} data-testid="lightbox-next">
        <Icon name="forward" />
      </button>
    </div>
  );
}
