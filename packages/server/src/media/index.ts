import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isMediaKind, mediaRoutes } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from '../db/engine.ts';
import type { MessagingService } from '../services/message-service.ts';
import type { Store } from '../store/store.ts';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './blob-local.ts';
import { MediaService } from './media-service.ts';
import { MediaStore } from './media-store.ts';
import { findFfmpeg } from './ffmpeg.ts';
import { registerMediaRoutes } from './routes.ts';
import { registerUploadRoutes } from './uploads.ts';

export { MediaService } from './media-service.ts';
export { MediaStore } from './media-store.ts';
export type { BlobStore } from './blob-store.ts';

export interface MediaModule {
  service: MediaService;
  start(): void;
  stop(): Promise<void>;
}

/** The blob store the configuration names: local disk (default) or S3. */
export async function openBlobStore(config: Config): Promise<BlobStore> {
  const m = config.media;
  if (m.storage === 's3') {
    if (!m.s3) throw new Error('media.storage is "s3" but media.s3 (bucket, …) is not set');
    const { S3BlobStore } = await import('./blob-s3.ts');
    return new S3BlobStore(m.s3);
  }
  return new LocalBlobStore(join(m.dir ?? join(config.dataDir, 'media'), 'objects'));
}

/** Media (src/media/): tus uploads, processing, storage, access-checked reads, GC; media kinds checked on send. */
export async function createMediaModule(
  api: RestApi,
  deps: { config: Config; db: SqlEngine; store: Store; messaging: MessagingService; log: Logger },
): Promise<MediaModule> {
  const { config, log } = deps;
  const dir = config.media.dir ?? join(config.dataDir, 'media');
  const incomingDir = join(dir, 'incoming');
  await mkdir(incomingDir, { recursive: true });
  const ffmpeg = findFfmpeg(config.media.ffmpeg).then((bin) => {
    if (!bin && config.media.ffmpeg !== 'off') log.warn(`ffmpeg not found (${config.media.ffmpeg}): videos get no poster or duration, voice notes no measured duration`);
    return bin;
  });
  const blobs = await openBlobStore(config);
  const service = new MediaService(new MediaStore(deps.db), blobs, deps.store, config.media, ffmpeg, log);
  const getTus = registerUploadRoutes(api, { media: service, incomingDir, expireMs: config.media.gcAfterMs });
  registerMediaRoutes(api, service);
  api.route(mediaRoutes.clientConfig, async () => ({
    media: { maxBytes: { ...config.media.maxBytes }, mapUrlTemplate: config.media.mapUrlTemplate },
  }));
  deps.messaging.addBodyHook((sender, kind, body, conv, id) => (isMediaKind(kind) ? service.prepareSend(sender, kind, body, conv, id) : body));

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | null = null;
  const sweep = () => {
    running ??= Promise.all([service.collectGarbage(), getTus().then((tus) => tus.cleanUpExpiredUploads())])
      .catch((err: unknown) => log.error({ err }, 'media garbage collection failed'))
      .finally(() => (running = null));
  };
  return {
    service,
    start() {
      timer = setInterval(sweep, config.media.gcIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
      await blobs.close();
    },
  };
}
