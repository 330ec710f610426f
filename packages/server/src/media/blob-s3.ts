import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStore, type ByteRange } from './blob-store.ts';

export interface S3BlobOptions {
  bucket: string;
  /** Key prefix inside the bucket, e.g. "magpie/". */
  prefix: string;
  region: string;
  /** S3-compatible servers (MinIO, Ceph, R2, …): their URL; unset for AWS. */
  endpoint?: string;
  /** Path-style URLs (bucket in the path): most S3-compatible servers need it. */
  forcePathStyle: boolean;
  /** Unset: the SDK's default chain (environment, shared config, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
}

const missing = (err: unknown): boolean =>
  err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);

/** Blobs in an S3 bucket through the official client. A PUT is atomic in S3: no temporary keys. */
export class S3BlobStore implements BlobStore {
  readonly name = 's3' as const;
  private readonly s3: S3Client;

  constructor(private readonly opts: S3BlobOptions) {
    this.s3 = new S3Client({
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.accessKeyId && opts.secretAccessKey ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
      // Checksums over a stream would make the SDK buffer it; the key already is the content's SHA-256.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private key(key: string): string {
    return this.opts.prefix + key;
  }

  async put(key: string, body: () => Readable, size: number, contentType: string): Promise<void> {
    const source = body();
    // A failing source must fail this put, not surface as an uncaught stream error.
    const abort = new AbortController();
    let failure: unknown;
    source.once('error', (err) => {
      failure = err;
      abort.abort();
    });
    try {
      await this.s3.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), Body: source, ContentLength: size, ContentType: contentType }), {
        abortSignal: abort.signal,
      });
    } catch (err) {
      throw failure ?? err;
    }
  }

  async stat(key: string): Promise<number | null> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const out = await this.s3.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return out.Body as Readable;
    } catch (err) {
      if (missing(err)) throw new BlobNotFoundError(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }));
  }

  async close(): Promise<void> {
    this.s3.destroy();
  }
}
