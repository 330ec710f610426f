/** The one MediaStore implementation (migration 0002), on both engines (PostgreSQL skipped when absent). */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import type { SqlEngine } from '../src/db/engine.ts';
import { MediaStore } from '../src/media/media-store.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'magpie-mediastore-'));
const schemas: string[] = [];
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const s of schemas) await rawClient(s).drop();
});
let n = 0;
const engines: { name: string; open: () => Promise<SqlEngine>; skip: () => Promise<string | null> }[] = [
  { name: 'sqlite', open: async () => new SqliteEngine(join(dir, `m${n++}.db`), { checkpointMs: 0 }), skip: async () => null },
  {
    name: 'postgres',
    open: async () => {
      const schema = freshSchemaName('media');
      schemas.push(schema);
      return PostgresEngine.open({ url: PG_URL, schema, max: 3 });
    },
    skip: pgUnavailable,
  },
];

const sha = (c: string) => c.repeat(64);

for (const e of engines) {
  describe(`media store on ${e.name}`, async () => {
    const skip = await e.skip();
    const withStore = async (fn: (s: MediaStore) => Promise<void>) => {
      const db = await e.open();
      try {
        await migrate(db, MIGRATIONS);
        await fn(new MediaStore(db));
      } finally {
        await db.close();
      }
    };

    test('upload lifecycle: created, completed with objects and measured metadata, failed', { skip: skip ?? false }, () =>
      withStore(async (s) => {
        await s.createUpload({ id: 'up_a', owner: 'u1', kind: 'image', name: 'a.jpg', declaredSize: 100, createdAt: 1000 });
        assert.equal((await s.getUpload('up_a'))!.state, 'uploading');
        const variants = [{ name: 'small' as const, width: 32, height: 16, mime: 'image/webp', sha256: sha('b'), size: 10 }];
        await s.completeUpload('up_a', { sha256: sha('a'), size: 100, mime: 'image/jpeg', meta: { width: 64, height: 32, placeholder: 'xyz', variants }, at: 2000 });
        const u = (await s.getUpload('up_a'))!;
        assert.deepEqual([u.state, u.sha256, u.size, u.mime, u.meta.width, u.completedAt, u.referencedAt], ['ready', sha('a'), 100, 'image/jpeg', 64, 2000, null]);
        assert.equal(await s.hasObject(sha('a')), true);
        assert.equal(await s.hasObject(sha('b')), true, 'variants are objects too');
        await s.createUpload({ id: 'up_b', owner: 'u1', kind: 'file', name: null, declaredSize: 5, createdAt: 1000 });
        await s.failUpload('up_b', 3000);
        assert.equal((await s.getUpload('up_b'))!.state, 'failed');
        assert.deepEqual((await s.getUploads(['up_a', 'up_b', 'up_x'])).map((x) => x.id).sort(), ['up_a', 'up_b']);
      }),
    );

    test('references grant conversations; GC keeps referenced uploads and shared objects', { skip: skip ?? false }, () =>
      withStore(async (s) => {
        for (const id of ['up_1', 'up_2', 'up_3']) await s.createUpload({ id, owner: 'u1', kind: 'image', name: null, declaredSize: 10, createdAt: 1000 });
        // up_1 and up_2 have the same content (one object); up_3 its own.
        await s.completeUpload('up_1', { sha256: sha('1'), size: 10, mime: 'image/png', meta: {}, at: 1100 });
        await s.completeUpload('up_2', { sha256: sha('1'), size: 10, mime: 'image/png', meta: {}, at: 1100 });
        await s.completeUpload('up_3', { sha256: sha('3'), size: 10, mime: 'image/png', meta: {}, at: 1100 });
        await s.addRefs(['up_1'], 'd:u1:u2', 'm1', 1200);
        await s.addRefs(['up_1'], 'd:u1:u2', 'm1', 1300); // idempotent
        await s.addRefs(['up_1'], 'g:team', 'm2', 1400);
        assert.deepEqual((await s.convsOf('up_1')).sort(), ['d:u1:u2', 'g:team']);
        assert.equal((await s.getUpload('up_1'))!.referencedAt, 1200);

        assert.deepEqual(await s.collectGarbage(500), { uploads: [], objects: [] }, 'nothing old enough');
        const gc = await s.collectGarbage(5000);
        assert.deepEqual(gc.uploads.sort(), ['up_2', 'up_3']);
        assert.deepEqual(gc.objects, [sha('3')], 'the object up_1 still uses stays');
        assert.equal(await s.hasObject(sha('1')), true);
        assert.ok(await s.getUpload('up_1'));

        // Recall of both messages: the upload becomes garbage, then its object.
        await s.removeMessageRefs('m1');
        assert.notEqual((await s.getUpload('up_1'))!.referencedAt, null, 'still referenced by m2');
        await s.removeMessageRefs('m2');
        assert.equal((await s.getUpload('up_1'))!.referencedAt, null);
        const gc2 = await s.collectGarbage(5000);
        assert.deepEqual([gc2.uploads, gc2.objects], [['up_1'], [sha('1')]]);
      }),
    );
  });
}
