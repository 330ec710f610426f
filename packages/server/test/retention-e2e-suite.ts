/**
 * Retention end to end against the real server process, shared by SQLite and PostgreSQL:
 * purge by conversation kind, a per-conversation override (admin REST), batches, side rows
 * gone, history answers with `purgedSeq`, a device below the purge told to full-sync, metrics.
 * Messages are aged by moving their stored `time` back in the server's own database (the
 * purge compares that column with the retention's cutoff).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { api, registerAndLogin, RawClient, type Account, type ServerProcess } from './harness.ts';

export const RETENTION_ADMIN = 'retention-admin-token-0123456789';
/** Direct conversations keep 30 days, groups forever; small batches with a pause; runs only on request. */
export const RETENTION_ENV = {
  MAGPIE_ADMIN_TOKEN: RETENTION_ADMIN,
  MAGPIE_RETENTION_DIRECT_DAYS: '30',
  MAGPIE_RETENTION_BATCH_SIZE: '3',
  MAGPIE_RETENTION_PAUSE_MS: '5',
  MAGPIE_RETENTION_INTERVAL_MS: '3600000',
};

const DAY = 24 * 3600 * 1000;

export interface RetentionCtx {
  srv: ServerProcess;
  /** Run SQL on the server's database (`?` placeholders). */
  sql(query: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
}

export function retentionSuite(ctx: () => RetentionCtx): void {
  let alice: Account;
  let bob: Account;
  let direct: string;
  let group: string;
  let held: string;
  const send = async (from: Account, target: { to: string } | { conv: string }, text: string) => {
    const r = await api(ctx().srv.url, 'POST', '/api/messages', { clientMsgId: `c-${text}-${Math.random()}`, kind: 'text', body: { text }, ...target }, from.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.message as { conv: string; seq: number; id: string };
  };
  const age = (conv: string, uptoSeq: number, days: number) => ctx().sql('UPDATE messages SET time = time - ? WHERE conv_id = ? AND seq <= ?', [days * DAY, conv, uptoSeq]);
  const count = async (q: string, params: unknown[]) => Number((await ctx().sql(q, params))[0]!.n);
  const admin = (method: string, path: string, body?: unknown) => api(ctx().srv.url, method, path, body, RETENTION_ADMIN);

  it('purges by kind and by override, in batches, with side rows; history carries purgedSeq', async () => {
    const { url } = ctx().srv;
    alice = await registerAndLogin(url);
    bob = await registerAndLogin(url);
    const first = await send(alice, { to: bob.userId }, 'hello 1');
    direct = first.conv;
    for (let i = 2; i <= 10; i++) await send(i % 2 ? alice : bob, { to: i % 2 ? bob.userId : alice.userId }, `hello ${i}`);
    // Side rows of message 2: a reaction (its event is message 11) and a media reference.
    assert.equal((await api(url, 'PUT', `/api/conversations/${encodeURIComponent(direct)}/messages/2/reactions/${encodeURIComponent('👍')}`, undefined, alice.token)).status, 200);
    const m2 = (await api(url, 'GET', `/api/conversations/${encodeURIComponent(direct)}/messages?after=1&limit=1`, undefined, alice.token)).body.messages[0];
    await ctx().sql('INSERT INTO media_refs (upload_id, conv, message_id, created_at) VALUES (?, ?, ?, ?)', ['up-ret', direct, m2.id, Date.now()]);
    group = (await api(url, 'POST', '/api/groups', { name: 'Kept forever', members: [bob.userId] }, alice.token)).body.group.conv;
    for (let i = 1; i <= 4; i++) await send(alice, { conv: group }, `group ${i}`);
    held = (await api(url, 'POST', '/api/groups', { name: 'Short-lived', members: [bob.userId] }, alice.token)).body.group.conv;
    for (let i = 1; i <= 4; i++) await send(bob, { conv: held }, `held ${i}`);
    // Wait for the search index to have the direct messages (it follows commits).
    for (let i = 0; i < 50 && (await count('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ?', [direct])) < 10; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await count('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ? AND seq <= 6', [direct])) > 0, 'indexed before the purge');

    // Direct: 1–6 older than 30 days. Group: everything 400 days old, but groups keep forever.
    await age(direct, 6, 40);
    await age(group, 10, 400);
    // The held group: an override of 2 days, and its first 3 seqs (notice + 2 messages) 5 days old.
    const o = await admin('PUT', `/api/admin/retention/conversations/${encodeURIComponent(held)}`, { days: 2, reason: 'customer asked for short retention' });
    assert.equal(o.status, 200, JSON.stringify(o.body));
    assert.deepEqual([o.body.days, o.body.override.days, o.body.override.setBy, o.body.purgedSeq], [2, 2, 'token', 0]);
    await age(held, 3, 5);
    const refused = await api(url, 'PUT', `/api/admin/retention/conversations/${encodeURIComponent(held)}`, { days: 2, reason: 'x' }, alice.token);
    assert.equal(refused.status, 401);

    const run = await admin('POST', '/api/admin/retention/run');
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.outcome, 'done');
    assert.equal(run.body.messages, 9, 'six direct messages and three of the held group');
    assert.equal(run.body.conversations, 2);
    assert.equal(run.body.batches, 3, 'batches of 3: two in the direct chat, one in the held group');

    const h = await api(url, 'GET', `/api/conversations/${encodeURIComponent(direct)}/messages?limit=50`, undefined, bob.token);
    assert.equal(h.body.purgedSeq, 6);
    assert.deepEqual(h.body.messages.map((m: any) => m.seq).sort((a: number, b: number) => a - b), [7, 8, 9, 10, 11]);
    assert.equal(h.body.more, false);
    const older = await api(url, 'GET', `/api/conversations/${encodeURIComponent(direct)}/messages?before=7`, undefined, bob.token);
    assert.deepEqual([older.body.messages, older.body.more, older.body.purgedSeq], [[], false, 6]);
    const g = await api(url, 'GET', `/api/conversations/${encodeURIComponent(group)}/messages?limit=50`, undefined, bob.token);
    assert.deepEqual([g.body.purgedSeq, g.body.messages.length >= 4], [0, true], 'groups keep forever');
    assert.equal((await api(url, 'GET', `/api/conversations/${encodeURIComponent(held)}/messages?limit=50`, undefined, bob.token)).body.purgedSeq, 3);
    // Over WebSocket too.
    const { client } = await RawClient.connect(ctx().srv.wsUrl, alice.token);
    const wsHist = await client.request({ type: 'history', conv: direct });
    assert.equal(wsHist.purgedSeq, 6);
    client.close();

    // Side rows of purged messages are gone; those of kept messages stay.
    assert.equal(await count('SELECT COUNT(*) AS n FROM messages WHERE conv_id = ? AND seq <= 6', [direct]), 0);
    assert.equal(await count('SELECT COUNT(*) AS n FROM lifecycle_reactions WHERE conv_id = ?', [direct]), 0);
    assert.equal(await count('SELECT COUNT(*) AS n FROM media_refs WHERE message_id = ?', [m2.id]), 0);
    assert.equal(await count('SELECT COUNT(*) AS n FROM inbox WHERE conv_id = ? AND seq <= 6', [direct]), 0);
    assert.equal(await count('SELECT COUNT(*) AS n FROM receipt_messages WHERE conv = ? AND seq <= 3', [held]), 0);
    const found = await api(url, 'GET', `/api/search?q=${encodeURIComponent('hello 2')}`, undefined, alice.token);
    if (found.status === 200) assert.ok(!JSON.stringify(found.body).includes('"hello 2"'), 'a purged message is not found by search');
    // The purged messages' documents are gone (SQLite: the search file's indexer applied the
    // purge log in the search's catch-up, if the run's own kick had not already); the others stay.
    for (let i = 0; i < 50 && (await count('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ? AND seq <= 6', [direct])) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await count('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ? AND seq <= 6', [direct]), 0);
    assert.ok((await count('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ? AND seq > 6', [direct])) > 0);

    // The state per conversation, the run log and the metrics.
    const st = await admin('GET', `/api/admin/retention/conversations/${encodeURIComponent(direct)}`);
    assert.deepEqual([st.body.kind, st.body.days, st.body.override, st.body.purgedSeq, st.body.purgedCount], ['direct', 30, null, 6, 6]);
    const status = await admin('GET', '/api/admin/retention');
    assert.equal(status.body.settings.directDays, 30);
    assert.equal(status.body.runs[0].messages, 9);
    assert.deepEqual(status.body.overrides.map((x: any) => x.conv), [held]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /magpie_retention_purged_messages_total\{kind="direct"\} 6/);
    assert.match(metrics, /magpie_retention_purged_messages_total\{kind="group"\} 3/);
    assert.match(metrics, /magpie_retention_last_run_timestamp_seconds \d/);
    // A second run finds nothing more to do.
    assert.equal((await admin('POST', '/api/admin/retention/run')).body.messages, 0);
  });

  it('a device whose inbox cursor is below the purge is told to full-sync; one above it syncs incrementally', async () => {
    const { wsUrl } = ctx().srv;
    const latest = (await RawClient.connect(wsUrl, bob.token, 0)).welcome.inboxSeq as number;
    const below = await RawClient.connect(wsUrl, bob.token, 1);
    assert.equal(below.welcome.sync, 'full');
    const page = await below.client.request({ type: 'sync', since: 1 });
    assert.deepEqual([page.full, page.items.length], [true, 0]);
    const purgedInbox = Number((await ctx().sql('SELECT purged_inbox_seq AS s FROM inbox_purge WHERE user_id = ?', [bob.userId]))[0]!.s);
    assert.ok(purgedInbox > 1 && purgedInbox < latest);
    const fromPurge = await below.client.request({ type: 'sync', since: purgedInbox });
    assert.equal(fromPurge.full, false, 'from the purge mark on the inbox is gap-free again');
    assert.ok(fromPurge.items.every((it: any) => it.inboxSeq > purgedInbox));
    below.client.close();
    const upToDate = await RawClient.connect(wsUrl, bob.token, latest);
    assert.equal(upToDate.welcome.sync, 'none');
    upToDate.client.close();
  });

  it('removing the override brings the kind setting back; the change is validated', async () => {
    const bad = await admin('PUT', `/api/admin/retention/conversations/${encodeURIComponent(held)}`, { days: -1, reason: 'x' });
    assert.equal(bad.status, 400);
    assert.equal((await admin('PUT', '/api/admin/retention/conversations/d:nope:none', { days: 1, reason: 'x' })).status, 404);
    const cleared = await admin('DELETE', `/api/admin/retention/conversations/${encodeURIComponent(held)}`, { reason: 'back to defaults' });
    assert.deepEqual([cleared.status, cleared.body.days, cleared.body.override, cleared.body.purgedSeq], [200, 0, null, 3]);
    assert.equal((await admin('DELETE', `/api/admin/retention/conversations/${encodeURIComponent(held)}`, { reason: 'again' })).status, 404);
  });
}
