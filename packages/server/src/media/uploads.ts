import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Server as TusServer } from '@tus/server';
import { MEDIA_KINDS, MagpieError, isMediaKind, uploadRoutes } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { Principal } from '../services/account-service.ts';
import { errorBody } from '../util/errors.ts';
import type { MediaService } from './media-service.ts';


/** The authenticated uploader of each raw request, set by our route before tus sees it. */
const uploaders = new WeakMap<IncomingMessage, string>();
type TusRequest = { runtime?: { node?: { req: unknown } } };
const uploaderOf = (req: TusRequest): string | undefined => uploaders.get(req.runtime?.node?.req as IncomingMessage);

/** A tus hook refusal: the status and our JSON error body. */
function refusal(err: MagpieError): { status_code: number; body: string } {
  return { status_code: err.status, body: JSON.stringify(errorBody(err)) };
}

/**
 * Resumable uploads with the tus protocol (v1.0.0, creation + termination extensions) under
 * /api/uploads. The client creates an upload with `Upload-Length` and `Upload-Metadata`
 * (`kind` image|video|voice|file, optional `filename`), sends PATCHes, and after a dropped
 * connection asks HEAD for the offset and continues. When the last byte arrives the upload
 * is processed (media-service.ts) before the final PATCH is answered.
 */
export function registerUploadRoutes(api: RestApi, deps: { media: MediaService; incomingDir: string; expireMs: number }): () => Promise<TusServer> {
  // The tus server loads with the first upload request, not at server start.
  let tus: Promise<TusServer> | null = null;
  const getTus = () => (tus ??= createTus(deps));
  const handle = async ({ principal, params, raw, reply }: { principal: Principal | undefined; params: { id?: string } | undefined; raw: FastifyRequest; reply: FastifyReply }) => {
    if (principal) {
      // Only the uploader may see or continue an upload.
      const id = params?.id;
      if (id) {
        const u = await deps.media.store.getUpload(id);
        if (!u || u.owner !== principal.userId) throw new MagpieError('not_found', 'no such upload');
      }
      uploaders.set(raw.raw, principal.userId);
    }
    const server = await getTus();
    reply.hijack();
    await server.handle(raw.raw, reply.raw);
  };
  // Only what tus defines (creation and discovery on the collection; offset, append and
  // termination on one upload): other methods get the documented 404, not a tus answer.
  // tus reads the request body itself (raw routes: no parsing, no body limit).
  for (const r of Object.values(uploadRoutes)) api.raw(r, handle);
  return getTus;
}

async function createTus(deps: { media: MediaService; incomingDir: string; expireMs: number }): Promise<TusServer> {
  const { media, incomingDir } = deps;
  const [{ FileStore }, { EVENTS, Server }] = await Promise.all([import('@tus/file-store'), import('@tus/server')]);
  const datastore = new FileStore({ directory: incomingDir, expirationPeriodInMilliseconds: deps.expireMs });
  const largest = Math.max(...MEDIA_KINDS.map((k) => media.maxBytes(k)));
  const tus = new Server({
    path: '/api/uploads',
    datastore,
    relativeLocation: true,
    maxSize: largest,
    namingFunction: () => `up_${randomBytes(16).toString('base64url')}`,
    async onUploadCreate(req, upload) {
      const owner = uploaderOf(req as TusRequest);
      const kind = upload.metadata?.kind ?? '';
      if (!owner) throw refusal(new MagpieError('unauthorized'));
      if (!isMediaKind(kind)) throw refusal(new MagpieError('invalid', 'Upload-Metadata needs kind: image, video, voice or file'));
      if (upload.size === undefined) throw refusal(new MagpieError('invalid', 'Upload-Length is required (deferred length is not supported)'));
      if (upload.size > media.maxBytes(kind)) throw refusal(new MagpieError('message_too_large', `a ${kind} may be at most ${media.maxBytes(kind)} bytes`));
      const name = upload.metadata?.filename?.slice(0, 255) || null;
      await media.store.createUpload({ id: upload.id, owner, kind, name, declaredSize: upload.size, createdAt: Date.now() });
      return {};
    },
    async onUploadFinish(_req, upload) {
      try {
        await media.complete(upload.id, join(incomingDir, upload.id));
      } catch (err) {
        throw refusal(err instanceof MagpieError ? err : new MagpieError('internal'));
      } finally {
        await datastore.remove(upload.id).catch(() => {});
      }
      return { headers: { 'Magpie-Upload-State': 'ready' } };
    },
  });
  tus.on(EVENTS.POST_TERMINATE, (_req, _res, id) => void media.store.failUpload(id, Date.now()));
  return tus;
}
