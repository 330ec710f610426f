import { MagpieError, mediaReadRoutes, mediaRoutes, type MediaKind } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { MediaService, VariantName } from './media-service.ts';
import type { UploadRecord } from './media-store.ts';


/** What clients see of an upload (no storage keys). */
export function uploadInfo(u: UploadRecord) {
  return {
    id: u.id,
    kind: u.kind as MediaKind,
    state: u.state,
    name: u.name,
    size: u.size ?? u.declaredSize,
    mime: u.mime,
    ...u.meta,
    variants: u.meta.variants?.map(({ name, width, height, mime, size }) => ({ name, width, height, mime, size })),
    createdAt: u.createdAt,
  };
}

/** One `bytes=a-b` / `bytes=a-` / `bytes=-n` range within `size`; null: none asked; 'bad': unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'bad';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'bad';
  return { start, end };
}

/**
 * Reading media: `GET /api/media/:id` with the bearer token, or with a signed URL from
 * `GET /api/media/:id/url` (for <img>/<video> tags, which cannot send headers). Only the
 * uploader and members of a conversation the upload was sent into may read it.
 */
export function registerMediaRoutes(api: RestApi, media: MediaService): void {
  // HEAD of an upload is tus's (the offset): no automatic HEAD route here.
  api.route(mediaRoutes.upload, async ({ principal, params }) => ({ upload: uploadInfo(await media.readable(principal.userId, params.id)) }), { head: false });

  api.route(mediaRoutes.signedUrl, async ({ principal, params, query }) => {
    const u = await media.readable(principal.userId, params.id);
    if (u.state !== 'ready') throw new MagpieError('not_found', 'the upload is not complete');
    return media.signedUrl(u.id, query.variant);
  });

  api.raw(mediaReadRoutes.read, async ({ params, query: q, raw: req, reply }) => {
    const id = params.id;
    let upload: UploadRecord | null;
    let maxAge: number;
    if (q.sig !== undefined || q.exp !== undefined) {
      if (q.sig === undefined || q.exp === undefined || !media.verifySigned(id, q.variant, q.exp, q.sig)) throw new MagpieError('forbidden', 'the signed URL is invalid or expired');
      upload = await media.store.getUpload(id);
      maxAge = Math.max(0, Math.floor((q.exp - Date.now()) / 1000));
    } else {
      upload = await media.readable((await api.authenticate(req)).userId, id);
      maxAge = 365 * 24 * 3600; // an upload's bytes never change
    }
    if (!upload || upload.state !== 'ready') throw new MagpieError('not_found', 'no such upload');
    const obj = pick(upload, q.variant);
    if (!obj) throw new MagpieError('not_found', `no ${q.variant} for this upload`);

    const etag = `"${obj.sha256}"`;
    void reply
      .header('cache-control', `private, max-age=${maxAge}${maxAge > 3600 ? ', immutable' : ''}`)
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('x-content-type-options', 'nosniff')
      .header('content-type', obj.mime);
    if (q.variant === 'original') {
      // Files download; media shows inline. A file's name goes in RFC 5987 form.
      const disp = upload.kind === 'file' ? 'attachment' : 'inline';
      void reply.header('content-disposition', upload.name ? `${disp}; filename*=UTF-8''${encodeURIComponent(upload.name)}` : disp);
    }
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const range = parseRange(req.headers.range, obj.size);
    if (range === 'bad') {
      return reply.code(416).header('content-range', `bytes */${obj.size}`).send();
    }
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${obj.size}`).header('content-length', range.end - range.start + 1);
    } else void reply.header('content-length', obj.size);
    if (req.method === 'HEAD') return reply.send();
    return reply.send(await media.blobs.read(obj.sha256, range ?? undefined));
  });
}

function pick(u: UploadRecord, variant: VariantName): { sha256: string; size: number; mime: string } | null {
  if (variant === 'original') return u.sha256 ? { sha256: u.sha256, size: u.size!, mime: u.mime! } : null;
  const v = u.meta.variants?.find((x) => x.name === variant);
  return v ? { sha256: v.sha256, size: v.size, mime: v.mime } : null;
}
