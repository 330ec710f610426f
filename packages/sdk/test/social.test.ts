import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RELATION_CHANGE_KINDS, RELATION_STATES, RelationFrame, type RelationChange, type RelationChangesResult, type RelationState } from '@magpie/protocol';
import { RestApi, type FetchLike } from '../src/rest.ts';
import { MagpieClientError } from '../src/errors.ts';
import { RELATION_CHANGE_KIND_VALUES, RELATION_STATE_VALUES, RelationSync, SocialApi, parseRelationFrame, type ListPage } from '../src/social.ts';

const change = (version: number, peer: string, state: RelationState, kind: RelationChange['kind'] = 'friend_added'): RelationChange => ({ version, peer, kind, state, time: 1000 + version });
const frame = (c: RelationChange) => ({ type: 'relation', version: c.version, change: c });

describe('relation frame handling', () => {
  it('the SDK copies of the enums match the protocol', () => {
    assert.deepEqual([...RELATION_STATE_VALUES], [...RELATION_STATES]);
    assert.deepEqual([...RELATION_CHANGE_KIND_VALUES], [...RELATION_CHANGE_KINDS]);
  });

  it('parseRelationFrame accepts exactly the frames the protocol schema accepts', () => {
    const good = [frame(change(1, 'u1', 'friend')), frame({ ...change(7, 'u2', 'incoming', 'request_received'), greeting: 'hi' })];
    const bad: unknown[] = [
      null,
      'relation',
      { type: 'msg', version: 1, change: change(1, 'u1', 'friend') },
      { type: 'relation', version: 2, change: change(1, 'u1', 'friend') },
      { type: 'relation', version: 0, change: change(0, 'u1', 'friend') },
      { type: 'relation', version: 1, change: { ...change(1, 'u1', 'friend'), state: 'enemy' } },
      { type: 'relation', version: 1, change: { ...change(1, 'u1', 'friend'), kind: 'poked' } },
      { type: 'relation', version: 1, change: { ...change(1, 'u1', 'friend'), peer: 5 } },
      { type: 'relation', version: 1, change: { ...change(1, 'u1', 'friend'), greeting: 5 } },
      { type: 'relation', version: 1.5, change: { ...change(1, 'u1', 'friend'), version: 1.5 } },
    ];
    for (const f of good) {
      assert.ok(RelationFrame.safeParse(f).success);
      assert.deepEqual(parseRelationFrame(f), f);
    }
    for (const f of bad) assert.equal(parseRelationFrame(f), null, JSON.stringify(f));
  });
});

/** A scripted server side of the relation log: the list endpoints and changes?since. */
class FakeSocial {
  log: RelationChange[] = [];
  floor = 0;
  calls: string[] = [];
  state = new Map<string, RelationState>();
  record(c: RelationChange): void {
    this.log.push(c);
    if (c.state === 'none') this.state.delete(c.peer);
    else this.state.set(c.peer, c.state);
  }
  get version(): number {
    return this.log.at(-1)?.version ?? 0;
  }
  private list(state: RelationState, after: string | undefined, limit = 200): ListPage<{ user: { id: string } }> {
    const ids = [...this.state].filter(([, s]) => s === state).map(([p]) => p).sort().filter((p) => after === undefined || p > after);
    const items = ids.slice(0, limit).map((id) => ({ user: { id } }));
    return { items, next: ids.length > limit ? items.at(-1)!.user.id : null, version: this.version };
  }
  api(): SocialApi {
    return {
      friends: async (q: { after?: string; limit?: number }) => (this.calls.push('friends'), this.list('friend', q.after, q.limit)),
      requests: async (d: 'incoming' | 'outgoing', q: { after?: string; limit?: number }) => (this.calls.push(d), this.list(d, q.after, q.limit)),
      blocks: async (q: { after?: string; limit?: number }) => (this.calls.push('blocks'), this.list('blocked', q.after, q.limit)),
      changes: async (since: number, limit = 3): Promise<RelationChangesResult> => {
        this.calls.push(`changes:${since}`);
        if (since < this.floor || since > this.version) return { version: this.version, changes: [], more: false, full: true };
        const changes = this.log.filter((c) => c.version > since).slice(0, limit);
        return { version: this.version, changes, more: (changes.at(-1)?.version ?? since) < this.version, full: false };
      },
    } as unknown as SocialApi;
  }
}

describe('RelationSync', () => {
  it('first sync loads the lists, then applies frames in version order: next applied, stale ignored, a gap pulled', async () => {
    const srv = new FakeSocial();
    srv.record(change(1, 'a', 'incoming', 'request_received'));
    srv.record(change(2, 'b', 'friend'));
    srv.record(change(3, 'c', 'blocked', 'blocked'));
    const sync = new RelationSync(srv.api(), { pageSize: 1 });
    const resets: number[] = [];
    const seen: string[] = [];
    sync.on('reset', (e) => resets.push(e.version));
    sync.on('change', (e) => seen.push(`${e.change.version}:${e.change.peer}:${e.previous}->${e.change.state}`));
    await sync.sync();
    assert.deepEqual(resets, [3]);
    assert.equal(sync.version, 3);
    assert.deepEqual([...sync.relations].sort(), [['a', 'incoming'], ['b', 'friend'], ['c', 'blocked']]);

    srv.record(change(4, 'a', 'friend', 'friend_added'));
    assert.equal(sync.handleFrame(frame(srv.log[3]!)), true);
    assert.equal(sync.stateOf('a'), 'friend');
    assert.equal(sync.handleFrame(frame(srv.log[1]!)), true, 'a stale frame is still a relation frame');
    assert.equal(sync.version, 4);
    assert.equal(sync.handleFrame({ type: 'msg' }), false);

    // v5 and v6 are missed; v7 arrives → pull since 4.
    srv.record(change(5, 'd', 'incoming', 'request_received'));
    srv.record(change(6, 'b', 'none', 'friend_removed'));
    srv.record(change(7, 'd', 'friend', 'friend_added'));
    srv.calls = [];
    sync.handleFrame(frame(srv.log[6]!));
    assert.equal(sync.version, 4, 'not applied over a gap');
    await sync.sync();
    assert.ok(srv.calls.includes('changes:4'));
    assert.equal(sync.version, 7);
    assert.deepEqual([...sync.relations].sort(), [...srv.state].sort());
    assert.deepEqual(seen, ['4:a:incoming->friend', '5:d:none->incoming', '6:b:friend->none', '7:d:incoming->friend']);
  });

  it('rebuilds from the lists when the log no longer reaches back (full), replaying what the lists may have missed', async () => {
    const srv = new FakeSocial();
    for (let v = 1; v <= 10; v++) srv.record(change(v, `p${v}`, v % 3 === 0 ? 'blocked' : 'friend'));
    const sync = new RelationSync(srv.api(), { version: 2, relations: [['p1', 'friend'], ['p2', 'friend'], ['gone', 'friend']] });
    srv.floor = 6;
    const resets: number[] = [];
    sync.on('reset', (e) => resets.push(e.version));
    await sync.sync();
    assert.deepEqual(resets, [10]);
    assert.equal(sync.stateOf('gone'), 'none', 'the stale local view was replaced');
    assert.deepEqual([...sync.relations].sort(), [...srv.state].sort());
  });

  it('concurrent syncs share one run', async () => {
    const srv = new FakeSocial();
    srv.record(change(1, 'x', 'friend'));
    const sync = new RelationSync(srv.api(), { version: 0, relations: [] });
    await Promise.all([sync.sync(), sync.sync(), sync.sync()]);
    assert.deepEqual(srv.calls, ['changes:0', 'changes:1'], 'one run, gone around once more from the new version');
    assert.equal(sync.version, 1);
  });
});

describe('SocialApi over RestApi', () => {
  it('sends each call to its route with the token, and maps errors to MagpieClientError', async () => {
    const seen: { url: string; method?: string; auth?: string; body?: string }[] = [];
    const fetch: FetchLike = async (url, init) => {
      seen.push({ url, method: init?.method, auth: init?.headers?.authorization, body: init?.body });
      if (url.includes('/api/blocks/')) return { ok: false, status: 403, text: async () => JSON.stringify({ error: { code: 'forbidden', message: 'no' } }) };
      return { ok: true, status: 200, text: async () => JSON.stringify({ profile: { id: 'me' }, ok: true }) };
    };
    let token = 't1';
    const api = new SocialApi(new RestApi({ baseUrl: 'http://h/', fetch }), () => token);
    await api.profile();
    await api.updateProfile({ nickname: 'N', avatar: null });
    await api.userProfile('u/1');
    await api.search('Ab c', { limit: 5, cursor: 'cur' });
    await api.requestFriend('u2', 'hello');
    await api.requestFriend('u3');
    await api.acceptRequest('u4');
    await api.rejectRequest('u5');
    await api.cancelRequest('u6');
    await api.removeFriend('u7');
    await api.friends({ after: 'u0', limit: 2 });
    await api.requests('outgoing');
    await api.blocks();
    token = 't2';
    await api.changes(41, 10);
    await assert.rejects(api.block('u8'), (e: unknown) => e instanceof MagpieClientError && e.code === 'forbidden' && e.status === 403);
    token = '';
    await assert.rejects(api.unblock('u8'), (e: unknown) => e instanceof MagpieClientError && e.code === 'unauthorized');
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url.replace('http://h', '')} ${s.auth} ${s.body ?? ''}`.trim()),
      [
        'GET /api/profile Bearer t1',
        'PATCH /api/profile Bearer t1 {"nickname":"N","avatar":null}',
        'GET /api/users/u%2F1/profile Bearer t1',
        'GET /api/users/search?q=Ab+c&limit=5&cursor=cur Bearer t1',
        'POST /api/friends/requests Bearer t1 {"to":"u2","greeting":"hello"}',
        'POST /api/friends/requests Bearer t1 {"to":"u3"}',
        'POST /api/friends/requests/u4/accept Bearer t1',
        'POST /api/friends/requests/u5/reject Bearer t1',
        'DELETE /api/friends/requests/u6 Bearer t1',
        'DELETE /api/friends/u7 Bearer t1',
        'GET /api/friends?after=u0&limit=2 Bearer t1',
        'GET /api/friends/requests?direction=outgoing Bearer t1',
        'GET /api/blocks Bearer t1',
        'GET /api/relations/changes?since=41&limit=10 Bearer t2',
        'PUT /api/blocks/u8 Bearer t2',
      ],
    );
  });
});
