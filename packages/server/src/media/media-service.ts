import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { MagpieError, isMediaKind, type MediaBody, type MediaKind } from '@magpie/protocol';
import type { Store } from '../store/store.ts';
import { storeBuffer, storeFile, type BlobStore } from './blob-store.ts';
import type { MediaConfig } from '../config/media-config.ts';
import type { MediaMeta, MediaStore, UploadRecord } from './media-store.ts';

export type VariantName = 'original' | 'small' | 'large' | 'poster';

/**
 * Media rules: what an upload becomes when it completes, who may read it, what a message may
 * reference, and garbage collection. Bytes go to the BlobStore, records to the MediaStore.
 */
export class MediaService {
  private readonly secret: Buffer;

  constructor(
    readonly store: MediaStore,
    readonly blobs: BlobStore,
    private readonly messages: Pick<Store, 'isMember'>,
    private readonly config: MediaConfig,
    /** The ffmpeg binary once probed (null: none); probed in the background so startup does not wait. */
    readonly ffmpeg: Promise<string | null>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.secret = config.urlSecret ? Buffer.from(config.urlSecret) : randomBytes(32);
  }

  maxBytes(kind: MediaKind): number {
    return this.config.maxBytes[kind];
  }

  /**
   * An upload's bytes arrived (tus finished): detect the type from the content, check it
   * fits the kind, strip/measure/thumbnail, store everything content-addressed and mark the
   * upload ready. A refused upload is marked failed. The upload's file is the caller's.
   */
  async complete(id: string, path: string): Promise<UploadRecord> {
    const upload = await this.store.getUpload(id);
    if (!upload) throw new MagpieError('not_found', 'no such upload');
    const kind = upload.kind as MediaKind;
    let cleaned: string | null = null;
    try {
      // sharp, file-type and thumbhash load with the first upload, not at server start.
      const { detectMime, mimeForKind, processUpload } = await import('./process.ts');
      const mime = mimeForKind(kind, await detectMime(path));
      const p = await processUpload(kind, path, mime, { thumbSmall: this.config.thumbSmall, thumbLarge: this.config.thumbLarge, ffmpeg: await this.ffmpeg });
      if (p.path !== path) cleaned = p.path;
      const content = await storeFile(this.blobs, p.path, mime);
      const variants: NonNullable<MediaMeta['variants']> = [];
      for (const v of p.variants) {
        const put = await storeBuffer(this.blobs, v.data, v.mime);
        variants.push({ name: v.name, width: v.width, height: v.height, mime: v.mime, sha256: put.sha256, size: put.size });
      }
      const meta: MediaMeta = { ...p.meta, ...(variants.length ? { variants } : {}) };
      await this.store.completeUpload(id, { sha256: content.sha256, size: content.size, mime, meta, at: this.now() });
    } catch (err) {
      await this.store.failUpload(id, this.now());
      if (err instanceof MagpieError) throw err;
      this.log.error({ err, upload: id }, 'media processing failed');
      throw new MagpieError('internal', 'the upload could not be processed');
    } finally {
      if (cleaned) await rm(cleaned, { force: true });
    }
    return (await this.store.getUpload(id))!;
  }

  /** The uploader, and members of a conversation the upload was sent into. */
  async canRead(userId: string, upload: UploadRecord): Promise<boolean> {
    if (upload.owner === userId) return true;
    for (const conv of await this.store.convsOf(upload.id)) {
      if (conv.startsWith('d:')) {
        if (conv.split(':').slice(1).includes(userId)) return true;
      } else if (await this.messages.isMember(conv, userId)) return true;
    }
    return false;
  }

  /** An upload the user may read, or not_found (no difference between absent and forbidden: ids do not leak). */
  async readable(userId: string, id: string): Promise<UploadRecord> {
    const upload = await this.store.getUpload(id);
    if (!upload || !(await this.canRead(userId, upload))) throw new MagpieError('not_found', 'no such upload');
    return upload;
  }

  /**
   * Check a media message before it is stored, and grant the conversation's members access:
   * the upload exists, is ready, was uploaded for this kind, and the sender uploaded it or
   * may read it (forwarding). Returns the body with the fields the server measured.
   */
  async prepareSend(sender: string, kind: string, body: unknown, conv: string, messageId: string): Promise<unknown> {
    if (!isMediaKind(kind)) return body;
    const b = body as MediaBody;
    const bad = (message: string) => new MagpieError('invalid', message, { details: [{ path: ['body', 'upload'], message }] });
    const upload = await this.store.getUpload(b.upload);
    if (!upload || !(await this.canRead(sender, upload))) throw new MagpieError('not_found', `no such upload: ${b.upload}`);
    if (upload.state !== 'ready') throw bad(`upload ${b.upload} is ${upload.state === 'failed' ? 'failed' : 'not complete'}`);
    if (upload.kind !== kind) throw bad(`upload ${b.upload} is a ${upload.kind}, not a ${kind}`);
    await this.store.addRefs([upload.id], conv, messageId, this.now());
    return withMeasured(kind, b, upload);
  }

  signedUrl(id: string, variant: VariantName): { url: string; expiresAt: number } {
    const exp = this.now() + this.config.urlTtlMs;
    return { url: `/api/media/${id}?variant=${variant}&exp=${exp}&sig=${this.sign(id, variant, exp)}`, expiresAt: exp };
  }

  /** A signed URL's signature is valid and not expired. */
  verifySigned(id: string, variant: VariantName, exp: number, sig: string): boolean {
    if (!Number.isFinite(exp) || exp < this.now()) return false;
    const want = Buffer.from(this.sign(id, variant, exp));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  private sign(id: string, variant: VariantName, exp: number): string {
    return createHmac('sha256', this.secret).update(`${id}\n${variant}\n${exp}`).digest('base64url');
  }

  /** Delete unreferenced uploads older than gcAfterMs and bytes nothing uses any more. */
  async collectGarbage(): Promise<{ uploads: number; objects: number }> {
    let uploads = 0;
    let objects = 0;
    for (;;) {
      const r = await this.store.collectGarbage(this.now() - this.config.gcAfterMs);
      for (const sha of r.objects) await this.blobs.delete(sha);
      uploads += r.uploads.length;
      objects += r.objects.length;
      if (r.uploads.length === 0) break;
    }
    if (uploads) this.log.info({ uploads, objects }, 'media garbage collected');
    return { uploads, objects };
  }
}

/** The message body with the measured fields of the upload (the client's values are not trusted). */
function withMeasured(kind: MediaKind, b: MediaBody, u: UploadRecord): MediaBody {
  const m = u.meta;
  const variants = m.variants?.map(({ name, width, height, mime }) => ({ name, width, height, mime }));
  const common = { mime: u.mime!, size: u.size! };
  const pick = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  switch (kind) {
    case 'image':
      return { ...b, ...common, ...pick({ width: m.width, height: m.height, placeholder: m.placeholder, animated: m.animated, variants }) } as MediaBody;
    case 'video':
      return { ...b, ...common, ...pick({ width: m.width, height: m.height, duration: m.duration, placeholder: m.placeholder, variants }) } as MediaBody;
    case 'voice':
      return { ...b, ...common, ...pick({ duration: m.duration }) } as MediaBody;
    case 'file':
      return { ...b, ...common, ...((b as { name?: string }).name ? {} : u.name ? { name: u.name } : {}) } as MediaBody;
  }
}
