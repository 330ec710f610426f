import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, type BlobStore, type ByteRange } from './blob-store.ts';

/** Blobs as files under `dir` (default `dataDir/media/objects`), fanned out by the key's first two byte pairs. */
export class LocalBlobStore implements BlobStore {
  readonly name = 'local' as const;
  constructor(private readonly dir: string) {}

  private path(key: string): string {
    if (!/^[0-9a-zA-Z_-]{8,128}$/.test(key)) throw new Error(`bad blob key: ${key}`);
    return join(this.dir, key.slice(0, 2), key.slice(2, 4), key);
  }

  async put(key: string, body: () => Readable, size: number): Promise<void> {
    const final = this.path(key);
    await mkdir(dirname(final), { recursive: true });
    // Write beside the final name, then rename: readers never see a partial file.
    const tmp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await pipeline(body(), createWriteStream(tmp, { flush: true }));
      const written = (await stat(tmp)).size;
      if (written !== size) throw new Error(`blob ${key}: wrote ${written} bytes, expected ${size}`);
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async stat(key: string): Promise<number | null> {
    try {
      return (await stat(this.path(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.path(key);
    if ((await this.stat(key)) === null) throw new BlobNotFoundError(key);
    return createReadStream(path, range ? { start: range.start, end: range.end } : {});
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async close(): Promise<void> {}
}
