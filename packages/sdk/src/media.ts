import { Upload, type DetailedError } from 'tus-js-client';
import { messagePreview, formatDuration, type MediaKind } from '@magpie/protocol';
import { MagpieClientError, type MagpieClientErrorCode } from './errors.ts';
import { TypedEmitter } from './emitter.ts';
import { AuthedRest, RestApi, type FetchLike } from './rest.ts';
import type { LocalMessage } from './history.ts';
import type { SendTarget } from './send-queue.ts';

/** What an upload became on the server (`GET /api/uploads/:id`). */
export interface UploadInfo {
  id: string;
  kind: MediaKind;
  state: 'uploading' | 'ready' | 'failed';
  name: string | null;
  size: number | null;
  mime: string | null;
  width?: number;
  height?: number;
  duration?: number;
  placeholder?: string;
  animated?: boolean;
  variants?: { name: 'small' | 'large' | 'poster'; width: number; height: number; mime: string; size: number }[];
  createdAt: number;
}

/** A file to upload: a Blob/File in browsers; a Buffer or fs.ReadStream (with its path) in Node. */
export type UploadSource = Blob | Uint8Array | { path: string | Buffer; read: unknown };

export type UploadState = 'uploading' | 'paused' | 'done' | 'failed' | 'cancelled';

export interface UploadEvents {
  progress: { sent: number; total: number };
  state: UploadState;
}

export interface MediaApiOptions {
  baseUrl: string;
  /** The current session token (read on every request, so a re-login is picked up). */
  token: () => string | null | undefined;
  fetch?: FetchLike;
  /** Sends a message: pass `(input) => client.send(input)` of a MagpieClient. */
  send?: (input: SendTarget & { kind: string; body: unknown }) => Promise<LocalMessage>;
  /** Resolves when a queued message is sent: `(id) => client.waitForSend(id)`. */
  waitForSend?: (clientMsgId: string) => Promise<LocalMessage | undefined>;
  /** tus chunk size in bytes (default: the whole file in one request; Node ReadStreams need one). */
  chunkSize?: number;
  /** Delays between automatic retries after a network error; each resumes at the server's offset. */
  retryDelays?: number[];
  /**
   * After the automatic retries a network error leaves the upload `paused` (`stalled` true)
   * instead of failing it, so `resume()` continues it when the connection is back (a chat
   * view model does this on reconnect). Default false: the upload fails.
   */
  keepOnNetworkError?: boolean;
}

/**
 * One resumable upload (tus). `pause()` stops sending and keeps the upload on the server;
 * `resume()` asks the server how far it got and continues from there (also after a network
 * drop or with `resumeUrl` in a new session); `cancel()` deletes it on the server.
 */
export class MediaUpload extends TypedEmitter<UploadEvents> {
  state: UploadState = 'uploading';
  /** Paused by a network error (not by the user): resume when the network is back. */
  stalled = false;
  sent = 0;
  total = 0;
  readonly done: Promise<UploadInfo>;
  private readonly tus: Upload;
  private settle!: { resolve(info: UploadInfo): void; reject(err: unknown): void };

  constructor(
    private readonly api: MediaApi,
    source: UploadSource,
    readonly kind: MediaKind,
    opts: { filename?: string; resumeUrl?: string; chunkSize?: number; retryDelays?: number[]; keepOnNetworkError?: boolean },
  ) {
    super();
    this.done = new Promise<UploadInfo>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // callers that never await must not see an unhandled rejection
    const metadata: Record<string, string> = { kind };
    if (opts.filename) metadata.filename = opts.filename;
    else if (typeof Blob !== 'undefined' && source instanceof Blob && 'name' in source && typeof source.name === 'string') metadata.filename = source.name;
    // tus-js-client's Node build reads Buffers and streams, not Blobs: a Blob given in Node
    // (tests, Electron main) is read into a Buffer first. Browsers pass the Blob through.
    const nodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBuffer): Uint8Array } }).Buffer;
    const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
    const blobInNode = isNode && nodeBuffer && typeof Blob !== 'undefined' && source instanceof Blob;
    this.tus = new Upload((blobInNode ? new Uint8Array(0) : source) as Blob, {
      endpoint: `${api.baseUrl}/api/uploads`,
      ...(opts.resumeUrl ? { uploadUrl: opts.resumeUrl } : {}),
      metadata,
      retryDelays: opts.retryDelays ?? [0, 1000, 3000, 5000, 10000],
      ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
      storeFingerprintForResuming: false,
      onBeforeRequest: (req) => {
        const token = api.token();
        if (token) req.setHeader('Authorization', `Bearer ${token}`);
      },
      onShouldRetry: (err: DetailedError) => {
        const status = err.originalResponse?.getStatus() ?? 0;
        // The server refused the content or the size: retrying cannot help.
        return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
      },
      onProgress: (sent, total) => {
        this.sent = sent;
        this.total = total;
        this.emit('progress', { sent, total });
      },
      onSuccess: () => void this.finish(),
      onError: (err) => {
        const status = (err as DetailedError).originalResponse?.getStatus() ?? 0;
        if (status === 0 && opts.keepOnNetworkError && this.state === 'uploading') {
          // The network is gone: keep the upload (the server holds what arrived) until resume().
          this.stalled = true;
          this.setState('paused');
          return;
        }
        const body = (err as DetailedError).originalResponse?.getBody();
        let e: MagpieClientError;
        try {
          const j = JSON.parse(body ?? '') as { error?: { code?: string; message?: string } };
          e = new MagpieClientError((j.error?.code ?? 'upload_failed') as MagpieClientErrorCode, j.error?.message ?? err.message);
        } catch {
          e = new MagpieClientError('upload_failed', err.message);
        }
        this.setState('failed');
        this.settle.reject(e);
      },
    });
    if (blobInNode) {
      void (source as Blob).arrayBuffer().then(
        (ab) => {
          this.tus.file = nodeBuffer!.from(ab) as unknown as Blob;
          this.tus.start();
        },
        (err: unknown) => this.settle.reject(err),
      );
    } else this.tus.start();
  }

  /** The upload's URL on the server once created; keep it to resume in a later session. */
  get url(): string | null {
    return this.tus.url;
  }

  /** The upload id (`up_…`) once created. */
  get id(): string | null {
    return this.tus.url ? this.tus.url.split('/').pop()! : null;
  }

  pause(): void {
    if (this.state !== 'uploading') return;
    this.setState('paused');
    void this.tus.abort(false);
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.stalled = false;
    this.setState('uploading');
    this.tus.start();
  }

  async cancel(): Promise<void> {
    if (this.state === 'done' || this.state === 'cancelled') return;
    this.setState('cancelled');
    await this.tus.abort(true).catch(() => {});
    this.settle.reject(new MagpieClientError('cancelled', 'upload cancelled'));
  }

  private async finish(): Promise<void> {
    try {
      const info = await this.api.info(this.id!);
      this.setState('done');
      this.settle.resolve(info);
    } catch (err) {
      this.setState('failed');
      this.settle.reject(err);
    }
  }

  private setState(s: UploadState): void {
    this.state = s;
    this.emit('state', s);
  }
}

export type PendingMediaState = 'uploading' | 'paused' | 'sending' | 'sent' | 'failed' | 'cancelled';

/**
 * A media message on its way: shown at once (`localUrl` is a blob: URL of the picked file in
 * browsers), then uploaded, then sent. `message` resolves with the sent message.
 */
export interface PendingMedia {
  /** Local id until the message is queued; then the message's clientMsgId. */
  localId: string;
  kind: MediaKind;
  localUrl: string | null;
  upload: MediaUpload;
  state(): PendingMediaState;
  message: Promise<LocalMessage>;
}

export interface SendMediaInput {
  kind: MediaKind;
  file: UploadSource;
  filename?: string;
  /** Extra body fields: caption, waveform, duration (voice, from the recorder). */
  body?: Record<string, unknown>;
  /** Text shown by clients that do not know the kind; default "[Image]", "[Voice] 0:12", … */
  fallback?: string;
  /** Called when the message is queued (upload done): the chat shows it from then on. */
  onQueued?: (message: LocalMessage) => void;
}

let localSeq = 0;

/**
 * Media for apps: resumable uploads, signed URLs for <img>/<video>, and sending media
 * messages that show before their upload finishes.
 */
export class MediaApi {
  readonly baseUrl: string;
  readonly token: () => string | null | undefined;
  private readonly http: AuthedRest;

  constructor(private readonly opts: MediaApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    if (!opts.fetch && !(globalThis as { fetch?: FetchLike }).fetch) throw new Error('MediaApi needs fetch');
    this.http = new AuthedRest(new RestApi({ baseUrl: this.baseUrl, ...(opts.fetch ? { fetch: opts.fetch } : {}) }), opts.token);
  }

  /** Start a resumable upload of a file for a message of `kind`. */
  upload(file: UploadSource, kind: MediaKind, opts: { filename?: string; resumeUrl?: string } = {}): MediaUpload {
    return new MediaUpload(this, file, kind, {
      ...opts,
      ...(this.opts.chunkSize ? { chunkSize: this.opts.chunkSize } : {}),
      ...(this.opts.retryDelays ? { retryDelays: this.opts.retryDelays } : {}),
      ...(this.opts.keepOnNetworkError ? { keepOnNetworkError: true } : {}),
    });
  }

  async info(uploadId: string): Promise<UploadInfo> {
    return (await this.get<{ upload: UploadInfo }>(`/api/uploads/${encodeURIComponent(uploadId)}`)).upload;
  }

  /** A short-lived URL of the media or a thumbnail that works without the token (for <img src>). */
  async url(uploadId: string, variant: 'original' | 'small' | 'large' | 'poster' = 'original'): Promise<{ url: string; expiresAt: number }> {
    const r = await this.get<{ url: string; expiresAt: number }>(`/api/media/${encodeURIComponent(uploadId)}/url?variant=${variant}`);
    return { url: this.baseUrl + r.url, expiresAt: r.expiresAt };
  }

  /**
   * Upload a file and send it as a message: the returned PendingMedia is there at once (with a
   * local blob URL in browsers); its message is queued when the upload is done.
   */
  sendMedia(target: SendTarget, input: SendMediaInput): PendingMedia {
    const send = this.opts.send;
    if (!send) throw new Error('MediaApi needs `send` to send messages');
    const upload = this.upload(input.file, input.kind, input.filename ? { filename: input.filename } : {});
    const localUrl = typeof Blob !== 'undefined' && input.file instanceof Blob && typeof URL.createObjectURL === 'function' ? URL.createObjectURL(input.file) : null;
    let state: PendingMediaState = 'uploading';
    upload.on('state', (s) => {
      if (s === 'uploading' || s === 'paused' || s === 'cancelled' || s === 'failed') state = s;
    });
    const ids = { localId: `local-${Date.now().toString(36)}-${++localSeq}` };
    const pending = {
      get localId() {
        return ids.localId;
      },
      kind: input.kind,
      localUrl,
      upload,
      state: () => state,
      message: (async () => {
        const info = await upload.done;
        state = 'sending';
        const body = { ...input.body, fallback: input.fallback ?? defaultFallback(input.kind, info, input.body), upload: info.id };
        try {
          const queued = await send({ ...target, kind: input.kind, body });
          ids.localId = queued.clientMsgId;
          input.onQueued?.(queued);
          const sent = this.opts.waitForSend ? ((await this.opts.waitForSend(queued.clientMsgId)) ?? queued) : queued;
          state = sent.state === 'failed' ? 'failed' : 'sent';
          return sent;
        } catch (err) {
          state = 'failed';
          throw err;
        }
      })() as Promise<LocalMessage>,
    } as PendingMedia;
    pending.message.catch(() => {});
    return pending;
  }

  private get<T>(path: string): Promise<T> {
    return this.http.req<T>('GET', path);
  }

}

function defaultFallback(kind: MediaKind, info: UploadInfo, body?: Record<string, unknown>): string {
  if (kind === 'voice') {
    const d = info.duration ?? (typeof body?.duration === 'number' ? body.duration : undefined);
    return d !== undefined ? `[Voice] ${formatDuration(d)}` : '[Voice]';
  }
  if (kind === 'file') return messagePreview('file', { name: info.name ?? undefined });
  return messagePreview(kind, {});
}
