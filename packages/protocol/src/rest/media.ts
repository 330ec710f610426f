import { z } from 'zod';
import { MEDIA_KINDS, MediaVariant } from '../media.ts';
import { rawRoute, restRoute, ErrorBodySchema } from './route.ts';

/**
 * Media (server: media/): the client's media settings, tus uploads (raw routes: tus speaks in
 * headers and bytes), upload info, and reads (bytes, or a signed URL for tags that cannot
 * send a token). Behaviour in docs/protocol.md, "Media: uploads and downloads".
 */
export const ClientConfigSchema = z.strictObject({
  media: z.strictObject({
    /** Largest upload per message kind, in bytes: a client refuses bigger files before uploading. */
    maxBytes: z.strictObject({ image: z.number().int(), video: z.number().int(), voice: z.number().int(), file: z.number().int() }),
    /** "Open in map" link of a location message: `{lat}`, `{lng}`, `{label}` replaced (URL-encoded); '' for none. */
    mapUrlTemplate: z.string(),
  }),
});
export type ClientConfig = z.infer<typeof ClientConfigSchema>;

const IdParams = z.strictObject({ id: z.string().min(1).max(128) });
const Variant = z.enum(['original', 'small', 'large', 'poster']).default('original');

/** What a client sees of an upload (no storage keys); media facts once processed. */
export const UploadInfoSchema = z.strictObject({
  id: z.string(),
  kind: z.enum(MEDIA_KINDS),
  state: z.enum(['uploading', 'ready', 'failed']),
  name: z.string().nullable(),
  size: z.number().int().nullable(),
  mime: z.string().nullable(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  duration: z.number().optional(),
  placeholder: z.string().optional(),
  animated: z.boolean().optional(),
  variants: z.array(MediaVariant.extend({ size: z.number().int() })).optional(),
  createdAt: z.number().int(),
});

const tus = 'Tus-Resumable: 1.0.0';
const tusAnswer = ['Tus-Resumable'] as const;
const refused = { description: 'refused (code table in docs/protocol.md)', contentType: 'application/json', schema: ErrorBodySchema };

/** tus 1.0.0 (creation, termination) under /api/uploads: raw routes, the tus server reads bodies and writes answers. */
export const uploadRoutes = {
  create: rawRoute({
    method: 'POST',
    url: '/api/uploads',
    summary: 'tus creation: start an upload',
    auth: 'user',
    headers: { 'Tus-Resumable': tus, 'Upload-Length': 'total bytes (deferred length is not supported)', 'Upload-Metadata': 'kind <image|video|voice|file>, filename? (base64 values)' },
    replies: { 201: { description: 'created', headers: ['Location', ...tusAnswer] }, 400: refused, 413: refused },
  }),
  discover: rawRoute({
    method: 'OPTIONS',
    url: '/api/uploads',
    summary: 'tus discovery (no token)',
    auth: 'none',
    replies: { 204: { description: 'what the server supports', headers: ['Tus-Version', 'Tus-Extension', 'Tus-Max-Size', ...tusAnswer] } },
  }),
  offset: rawRoute({
    method: 'HEAD',
    url: '/api/uploads/:id',
    summary: 'tus: the offset to continue from (uploader only)',
    auth: 'user',
    params: IdParams,
    headers: { 'Tus-Resumable': tus },
    replies: { 200: { description: 'the offset', headers: ['Upload-Offset', 'Upload-Length', ...tusAnswer] }, 404: { description: 'no such upload (or not yours)' } },
  }),
  append: rawRoute({
    method: 'PATCH',
    url: '/api/uploads/:id',
    summary: 'tus: append bytes at Upload-Offset; the last PATCH answers after processing',
    auth: 'user',
    params: IdParams,
    headers: { 'Tus-Resumable': tus, 'Upload-Offset': 'where these bytes start' },
    body: { contentType: 'application/offset+octet-stream', description: 'the next bytes of the file' },
    replies: { 204: { description: 'appended', headers: ['Upload-Offset', 'Magpie-Upload-State', ...tusAnswer] }, 400: refused, 404: refused, 409: { description: 'offset mismatch' } },
  }),
  terminate: rawRoute({
    method: 'DELETE',
    url: '/api/uploads/:id',
    summary: 'tus termination (uploader only)',
    auth: 'user',
    params: IdParams,
    headers: { 'Tus-Resumable': tus },
    replies: { 204: { description: 'removed', headers: tusAnswer }, 404: refused },
  }),
  discoverOne: rawRoute({
    method: 'OPTIONS',
    url: '/api/uploads/:id',
    summary: 'tus discovery on one upload (no token)',
    auth: 'none',
    params: IdParams,
    replies: { 204: { description: 'what the server supports', headers: ['Tus-Version', 'Tus-Extension', 'Tus-Max-Size', ...tusAnswer] } },
  }),
};

/** Reading media: the bytes with the token or a signed URL; HEAD answers the same headers. */
export const mediaReadRoutes = {
  read: rawRoute({
    method: 'GET',
    url: '/api/media/:id',
    summary: 'The bytes of a ready upload or one of its variants (bearer token, or exp and sig of a signed URL)',
    auth: 'none',
    params: IdParams,
    query: z.strictObject({ variant: Variant, exp: z.coerce.number().int().optional(), sig: z.string().max(128).optional() }),
    headers: { Authorization: 'Bearer <token> (without a signed URL)', Range: 'bytes=a-b | bytes=a- | bytes=-n', 'If-None-Match': 'the ETag' },
    replies: {
      200: { description: 'the bytes', contentType: 'application/octet-stream', headers: ['ETag', 'Cache-Control', 'Content-Disposition'] },
      206: { description: 'the range asked', contentType: 'application/octet-stream', headers: ['Content-Range'] },
      304: { description: 'not modified' },
      416: { description: 'range not satisfiable', headers: ['Content-Range'] },
    },
  }),
};

export const mediaRoutes = {
  clientConfig: restRoute({
    method: 'GET',
    url: '/api/client-config',
    summary: 'Media settings a client needs (upload limits, map link template)',
    auth: 'user',
    reply: { 200: ClientConfigSchema },
  }),
  upload: restRoute({
    method: 'GET',
    url: '/api/uploads/:id',
    summary: 'An upload (its uploader, or a member of a conversation it was sent into)',
    auth: 'user',
    params: IdParams,
    reply: { 200: z.strictObject({ upload: UploadInfoSchema }) },
  }),
  signedUrl: restRoute({
    method: 'GET',
    url: '/api/media/:id/url',
    summary: 'A signed URL of a ready upload that works without the token until expiresAt',
    auth: 'user',
    params: IdParams,
    query: z.strictObject({ variant: Variant }),
    reply: { 200: z.strictObject({ url: z.string(), expiresAt: z.number().int() }) },
  }),
};

/** The map link of a location from the operator's template ('' → null). */
export function mapUrl(template: string, loc: { lat: number; lng: number; label?: string | undefined }): string | null {
  if (!template) return null;
  return template
    .replaceAll('{lat}', encodeURIComponent(String(loc.lat)))
    .replaceAll('{lng}', encodeURIComponent(String(loc.lng)))
    .replaceAll('{label}', encodeURIComponent(loc.label ?? ''));
}
