import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Bytes [start, end], both inclusive (as in an HTTP Range header). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where media bytes live: local disk under the data directory (default) or an S3-compatible
 * object store. Keys are SHA-256 hex digests of the content (see `storeFile`), so a key's
 * bytes never change once written.
 *
 * Guarantees: `put` is atomic (readers see all of the bytes or none) and streams (it never
 * holds a whole object in memory); `read` streams, honours a range, and rejects with
 * `BlobNotFoundError` for a missing key; `delete` of a missing key succeeds.
 */
export interface BlobStore {
  readonly name: 'local' | 's3';
  put(key: string, body: () => Readable, size: number, contentType: string): Promise<void>;
  /** Size in bytes, or null when absent. */
  stat(key: string): Promise<number | null>;
  read(key: string, range?: ByteRange): Promise<Readable>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`no such blob: ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

export const isSha256 = (key: string): boolean => /^[0-9a-f]{64}$/.test(key);

/** SHA-256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { sha256: hash.digest('hex'), size };
}

/**
 * Store a file content-addressed: its key is its SHA-256, and content already stored is not
 * written again. Resolves with the key, the size and whether bytes were written.
 */
export async function storeFile(blobs: BlobStore, path: string, contentType: string): Promise<{ sha256: string; size: number; written: boolean }> {
  const { sha256, size } = await hashFile(path);
  if ((await blobs.stat(sha256)) === size) return { sha256, size, written: false };
  await blobs.put(sha256, () => createReadStream(path), size, contentType);
  return { sha256, size, written: true };
}

/** Store bytes already in memory (small thumbnails) content-addressed. */
export async function storeBuffer(blobs: BlobStore, data: Buffer, contentType: string): Promise<{ sha256: string; size: number; written: boolean }> {
  const sha256 = createHash('sha256').update(data).digest('hex');
  if ((await blobs.stat(sha256)) === data.length) return { sha256, size: data.length, written: false };
  const { Readable } = await import('node:stream');
  await blobs.put(sha256, () => Readable.from([data]), data.length, contentType);
  return { sha256, size: data.length, written: true };
}
