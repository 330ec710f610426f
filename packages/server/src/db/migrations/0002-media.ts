import type { Migration } from '../migrate.ts';

/**
 * Media (src/media/): uploads, the content-addressed objects they complete into, and the
 * conversations each upload was sent into (the access list for members).
 */
export const m0002: Migration = {
  name: '0002-media',
  async up(db) {
    await db.exec(`
CREATE TABLE media_objects (
  sha256 TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  mime TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE media_uploads (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT,
  declared_size BIGINT,
  state TEXT NOT NULL,
  sha256 TEXT,
  size BIGINT,
  mime TEXT,
  meta TEXT,
  created_at BIGINT NOT NULL,
  completed_at BIGINT,
  referenced_at BIGINT
);
CREATE INDEX media_uploads_owner ON media_uploads (owner, created_at);
CREATE INDEX media_uploads_sha ON media_uploads (sha256);
CREATE INDEX media_uploads_gc ON media_uploads (referenced_at, created_at);
CREATE TABLE media_refs (
  upload_id TEXT NOT NULL,
  conv TEXT NOT NULL,
  message_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (upload_id, conv, message_id)
);
CREATE INDEX media_refs_message ON media_refs (message_id);
`);
  },
};
