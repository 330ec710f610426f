import { useEffect, useState } from 'react';
import type { ClientConfig, MediaApi } from '@magpie/sdk';
import { thumbHashToDataURL } from 'thumbhash';
import type { Session } from '../session.ts';

type Variant = 'original' | 'small' | 'large' | 'poster';

/** Signed media URLs by upload and variant, reused until a minute before they expire. */
const cache = new Map<string, { url: string; expiresAt: number } | Promise<{ url: string; expiresAt: number }>>();
const MARGIN = 60_000;

export async function signedUrl(media: MediaApi, upload: string, variant: Variant): Promise<{ url: string; expiresAt: number }> {
  const key = `${upload}:${variant}`;
  const hit = cache.get(key);
  if (hit && !(hit instanceof Promise) && hit.expiresAt - MARGIN > Date.now()) return hit;
  if (hit instanceof Promise) return hit;
  const p = media.url(upload, variant).then(
    (r) => (cache.set(key, r), r),
    (err: unknown) => {
      cache.delete(key);
      throw err;
    },
  );
  cache.set(key, p);
  return p;
}

/** A signed URL for an <img>/<video>/<audio>/<a> (null while it is fetched or without an upload); renewed before it expires. */
export function useMediaUrl(media: MediaApi, upload: string | undefined, variant: Variant): string | null {
  const [url, setUrl] = useState<{ key: string; url: string } | null>(null);
  const key = upload ? `${upload}:${variant}` : '';
  useEffect(() => {
    if (!upload) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () =>
      void signedUrl(media, upload, variant).then(
        (r) => {
          if (!live) return;
          setUrl({ key, url: r.url });
          timer = setTimeout(load, Math.max(5_000, r.expiresAt - MARGIN - Date.now()));
        },
        () => {
          if (live) timer = setTimeout(load, 5_000);
        },
      );
    load();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [media, upload, variant, key]);
  return url && url.key === key ? url.url : null;
}

/** The server's media settings (map link template, upload limits); null until loaded. */
export function useClientConfig(session: Session): ClientConfig | null {
  const [cfg, setCfg] = useState<ClientConfig | null>(null);
  useEffect(() => {
    let live = true;
    session.clientConfig().then(
      (c) => live && setCfg(c),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [session]);
  return cfg;
}

/** A data: URL of the blurred preview a ThumbHash (base64) describes; null when it does not decode. */
export function placeholderUrl(hash: string | undefined): string | null {
  if (!hash) return null;
  try {
    const bin = atob(hash);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return thumbHashToDataURL(bytes);
  } catch {
    return null;
  }
}

/** Fit w×h into a box of at most max×max (keeping the aspect ratio; default 4:3 when unknown). */
export function fit(w: number | undefined, h: number | undefined, max: number): { width: number; height: number } {
  if (!w || !h) return { width: max, height: Math.round((max * 3) / 4) };
  const s = Math.min(1, max / Math.max(w, h));
  return { width: Math.max(48, Math.round(w * s)), height: Math.max(48, Math.round(h * s)) };
}

/** The media kind a picked or pasted file is sent as: images and videos as such (not SVG), everything else as a file. */
export function kindOfFile(f: { type: string }): 'image' | 'video' | 'file' {
  if (/^image\/(jpeg|png|gif|webp|avif)$/.test(f.type)) return 'image';
  if (f.type.startsWith('video/')) return 'video';
  return 'file';
}
