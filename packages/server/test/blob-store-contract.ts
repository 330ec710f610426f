import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BlobNotFoundError, storeBuffer, storeFile, type BlobStore } from '../src/media/blob-store.ts';

/** One suite for every BlobStore: local disk and S3 run the same tests. */
export function runBlobStoreContract(name: string, open: () => Promise<{ blobs: BlobStore; cleanup(): Promise<void> }>): void {
  describe(`blob store contract: ${name}`, () => {
    let blobs: BlobStore;
    let cleanup: () => Promise<void>;
    let dir: string;
    before(async () => {
      ({ blobs, cleanup } = await open());
      dir = await mkdtemp(join(tmpdir(), 'magpie-blob-'));
    });
    after(async () => {
      await cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    it('stores a file under its SHA-256 and reads it back whole and by range', async () => {
      const data = randomBytes(300_000);
      const path = join(dir, 'a.bin');
      await writeFile(path, data);
      const put = await storeFile(blobs, path, 'application/octet-stream');
      assert.match(put.sha256, /^[0-9a-f]{64}$/);
      assert.equal(put.size, data.length);
      assert.equal(put.written, true);
      assert.equal(await blobs.stat(put.sha256), data.length);
      assert.deepEqual(await buffer(await blobs.read(put.sha256)), data);
      assert.deepEqual(await buffer(await blobs.read(put.sha256, { start: 1000, end: 1999 })), data.subarray(1000, 2000));
      assert.deepEqual(await buffer(await blobs.read(put.sha256, { start: data.length - 10, end: data.length - 1 })), data.subarray(data.length - 10));
    });

    it('stores the same content once', async () => {
      const data = randomBytes(5000);
      const p1 = join(dir, 'b1.bin');
      const p2 = join(dir, 'b2.bin');
      await writeFile(p1, data);
      await writeFile(p2, data);
      const a = await storeFile(blobs, p1, 'application/octet-stream');
      const b = await storeFile(blobs, p2, 'application/octet-stream');
      assert.equal(a.sha256, b.sha256);
      assert.equal(a.written, true);
      assert.equal(b.written, false, 'the second copy is not written');
      const c = await storeBuffer(blobs, data, 'application/octet-stream');
      assert.equal(c.sha256, a.sha256);
      assert.equal(c.written, false);
    });

    it('reports a missing key and deletes idempotently', async () => {
      const key = 'f'.repeat(64);
      assert.equal(await blobs.stat(key), null);
      await assert.rejects(blobs.read(key), BlobNotFoundError);
      await blobs.delete(key);
      const put = await storeBuffer(blobs, Buffer.from('to delete'), 'text/plain');
      await blobs.delete(put.sha256);
      assert.equal(await blobs.stat(put.sha256), null);
    });

    it('a failed put leaves nothing behind', async () => {
      const key = 'e'.repeat(64);
      const failing = () =>
        new Readable({
          read() {
            this.destroy(new Error('source broke'));
          },
        });
      await assert.rejects(blobs.put(key, failing, 100, 'application/octet-stream'));
      assert.equal(await blobs.stat(key), null);
    });

    it('streams an object larger than memory buffers in chunks', async () => {
      const size = 8 * 1024 * 1024;
      const path = join(dir, 'big.bin');
      await writeFile(path, randomBytes(size));
      const put = await storeFile(blobs, path, 'application/octet-stream');
      let n = 0;
      let chunks = 0;
      for await (const chunk of await blobs.read(put.sha256)) {
        n += (chunk as Buffer).length;
        chunks++;
      }
      assert.equal(n, size);
      assert.ok(chunks > 1, 'read in several chunks');
    });
  });
}
