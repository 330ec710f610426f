import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, api, sleep, type ServerProcess } from './harness.ts';
import { png, tusUpload } from './media-fixtures.ts';
import { get, runMediaE2E } from './media-e2e-suite.ts';

runMediaE2E('local disk, SQLite', async () => ({ env: {}, cleanup: async () => {} }));

describe('media garbage collection', () => {
  // Roomy: an upload must survive until it is sent even when CI loads the machine (with 1.5 s
  // a slow upload + send let the collector take the upload that was about to be sent).
  const GC_AFTER_MS = 5000;
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ startTimeoutMs: 60_000, env: { MAGPIE_MEDIA_GC_AFTER_MS: String(GC_AFTER_MS), MAGPIE_MEDIA_GC_INTERVAL_MS: '300' } });
  });
  after(async () => srv.stop());

  it('deletes unreferenced uploads after gcAfterMs and keeps sent ones', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const kept = await tusUpload(srv.url, a.token, await png(30, 30), { kind: 'image' });
    const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'gc1', to: b.userId, kind: 'image', body: { fallback: '[Image]', upload: kept.id } }, a.token);
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const dropped = await tusUpload(srv.url, a.token, await png(31, 31), { kind: 'image' });
    const uploadedAt = Date.now();
    assert.equal((await get(srv.url, `/api/media/${dropped.id}`, a.token)).status, 200, 'kept until gcAfterMs');
    await sleep(GC_AFTER_MS + 1500 - (Date.now() - uploadedAt));
    assert.equal((await get(srv.url, `/api/media/${dropped.id}`, a.token)).status, 404);
    assert.equal((await get(srv.url, `/api/media/${kept.id}`, b.token)).status, 200);
  });
});
