import type { MediaVariant } from '@magpie/protocol';
import type { SqlEngine } from '../db/engine.ts';

export type UploadState = 'uploading' | 'ready' | 'failed';

/** What the server measured of an upload's content (also copied into message bodies). */
export interface MediaMeta {
  width?: number;
  height?: number;
  duration?: number;
  placeholder?: string;
  animated?: boolean;
  /** Thumbnails and posters: each its own content-addressed object. */
  variants?: (MediaVariant & { sha256: string; size: number })[];
}

export interface UploadRecord {
  id: string;
  owner: string;
  /** The message kind it is for: image, video, voice or file. */
  kind: string;
  name: string | null;
  declaredSize: number | null;
  state: UploadState;
  sha256: string | null;
  size: number | null;
  mime: string | null;
  meta: MediaMeta;
  createdAt: number;
  completedAt: number | null;
  /** When a message first referenced it; null: unreferenced (garbage after `gcAfterMs`). */
  referencedAt: number | null;
}

interface UploadRow {
  id: string;
  owner: string;
  kind: string;
  name: string | null;
  declared_size: number | string | null;
  state: string;
  sha256: string | null;
  size: number | string | null;
  mime: string | null;
  meta: string | null;
  created_at: number | string;
  completed_at: number | string | null;
  referenced_at: number | string | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: UploadRow): UploadRecord {
  return {
    id: r.id,
    owner: r.owner,
    kind: r.kind,
    name: r.name,
    declaredSize: num(r.declared_size),
    state: r.state as UploadState,
    sha256: r.sha256,
    size: num(r.size),
    mime: r.mime,
    meta: r.meta ? (JSON.parse(r.meta) as MediaMeta) : {},
    createdAt: Number(r.created_at),
    completedAt: num(r.completed_at),
    referencedAt: num(r.referenced_at),
  };
}

/**
 * Media metadata on the server's database, SQLite or PostgreSQL (db/engine.ts; tables:
 * migration 0002). Objects are keyed by SHA-256: many uploads may complete into one object,
 * which is deleted with its last upload.
 */
export class MediaStore {
  constructor(private readonly db: SqlEngine) {}

  async createUpload(u: { id: string; owner: string; kind: string; name: string | null; declaredSize: number | null; createdAt: number }): Promise<void> {
    await this.db.run("INSERT INTO media_uploads (id, owner, kind, name, declared_size, state, created_at) VALUES (?, ?, ?, ?, ?, 'uploading', ?)", [
      u.id,
      u.owner,
      u.kind,
      u.name,
      u.declaredSize,
      u.createdAt,
    ]);
  }

  async getUpload(id: string): Promise<UploadRecord | null> {
    const row = await this.db.get<UploadRow>('SELECT * FROM media_uploads WHERE id = ?', [id]);
    return row ? fromRow(row) : null;
  }

  async getUploads(ids: readonly string[]): Promise<UploadRecord[]> {
    if (ids.length === 0) return [];
    const list = this.db.textList(ids);
    return (await this.db.all<UploadRow>(`SELECT * FROM media_uploads WHERE id IN ${list.sql}`, [list.param])).map(fromRow);
  }

  /** Does an object with this hash exist (its bytes are in the blob store)? */
  async hasObject(sha256: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 AS one FROM media_objects WHERE sha256 = ?', [sha256])) !== undefined;
  }

  /** Record objects (the content and its variants) and mark the upload ready, in one transaction. */
  async completeUpload(id: string, done: { sha256: string; size: number; mime: string; meta: MediaMeta; at: number }): Promise<void> {
    await this.db.transaction(async (tx) => {
      const objects = [{ sha256: done.sha256, size: done.size, mime: done.mime }, ...(done.meta.variants ?? [])];
      for (const o of objects) {
        await tx.run('INSERT INTO media_objects (sha256, size, mime, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING', [o.sha256, o.size, o.mime, done.at]);
      }
      await tx.run("UPDATE media_uploads SET state = 'ready', sha256 = ?, size = ?, mime = ?, meta = ?, completed_at = ? WHERE id = ?", [
        done.sha256,
        done.size,
        done.mime,
        JSON.stringify(done.meta),
        done.at,
        id,
      ]);
    });
  }

  async failUpload(id: string, at: number): Promise<void> {
    await this.db.run("UPDATE media_uploads SET state = 'failed', completed_at = ? WHERE id = ?", [at, id]);
  }

  /** Uploads a message referenced; grants members of `conv` read access. Idempotent. */
  async addRefs(uploadIds: readonly string[], conv: string, messageId: string, at: number): Promise<void> {
    if (uploadIds.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const id of uploadIds) {
        await tx.run('INSERT INTO media_refs (upload_id, conv, message_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [id, conv, messageId, at]);
        await tx.run('UPDATE media_uploads SET referenced_at = COALESCE(referenced_at, ?) WHERE id = ?', [at, id]);
      }
    });
  }

  /** Conversations the upload was sent into. */
  async convsOf(uploadId: string): Promise<string[]> {
    const rows = await this.db.all<{ conv: string }>('SELECT DISTINCT conv FROM media_refs WHERE upload_id = ?', [uploadId]);
    return rows.map((r) => r.conv);
  }

  /** Drop a message's references (recall, expiry); its uploads become garbage once no reference is left. */
  async removeMessageRefs(messageId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const ids = await tx.all<{ upload_id: string }>('SELECT upload_id FROM media_refs WHERE message_id = ?', [messageId]);
      await tx.run('DELETE FROM media_refs WHERE message_id = ?', [messageId]);
      for (const { upload_id } of ids) {
        await tx.run('UPDATE media_uploads SET referenced_at = NULL WHERE id = ? AND NOT EXISTS (SELECT 1 FROM media_refs WHERE upload_id = ?)', [upload_id, upload_id]);
      }
    });
  }

  /**
   * Delete uploads never referenced and older than `before` (and unreferenced ones whose last
   * reference went), then objects no upload uses. Resolves with the deleted upload ids and
   * the hashes whose bytes the caller must delete from the blob store.
   */
  async collectGarbage(before: number, limit = 500): Promise<{ uploads: string[]; objects: string[] }> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.all<UploadRow>('SELECT * FROM media_uploads WHERE referenced_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?', [before, limit]);
      if (rows.length === 0) return { uploads: [], objects: [] };
      const uploads = rows.map(fromRow);
      const ids = tx.textList(uploads.map((u) => u.id));
      await tx.run(`DELETE FROM media_uploads WHERE id IN ${ids.sql}`, [ids.param]);
      const candidates = new Set<string>();
      for (const u of uploads) {
        if (u.sha256) candidates.add(u.sha256);
        for (const v of u.meta.variants ?? []) candidates.add(v.sha256);
      }
      const objects: string[] = [];
      for (const sha of candidates) {
        // Still used as content, or as a variant of another upload's content (variants derive from content, so the same content has the same variants)?
        const used = await tx.get('SELECT 1 AS one FROM media_uploads WHERE sha256 = ? OR meta LIKE ? LIMIT 1', [sha, `%"sha256":"${sha}"%`]);
        if (used) continue;
        await tx.run('DELETE FROM media_objects WHERE sha256 = ?', [sha]);
        objects.push(sha);
      }
      return { uploads: uploads.map((u) => u.id), objects };
    });
  }
}
