// The Magpie admin console: a small page over /api/console/… (no framework; DOM built with
// textContent only, so nothing from the server is ever parsed as HTML).
import { traceIdFromHash, traceView } from './console-trace.js';

const app = document.getElementById('app');
let token = sessionStorage.getItem('magpie-console-token');
let me = null;
let tab = 'users';

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/console/login') logout(false);
    throw new Error(json.error?.message ?? `HTTP ${res.status}`);
  }
  return json;
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

function logout(callServer = true) {
  if (callServer && token) void call('POST', '/api/console/logout').catch(() => {});
  token = null;
  me = null;
  sessionStorage.removeItem('magpie-console-token');
  render();
}

function loginView() {
  const err = h('p', { class: 'error', role: 'alert' });
  const totp = h('input', { name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', placeholder: 'TOTP code (if enrolled)', 'aria-label': 'TOTP code' });
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (e) => {
        e.preventDefault();
        const f = new FormData(form);
        try {
          const r = await call('POST', '/api/console/login', { username: f.get('username'), password: f.get('password'), ...(f.get('totp') ? { totp: f.get('totp') } : {}) });
          token = r.token;
          me = r.admin;
          sessionStorage.setItem('magpie-console-token', token);
          render();
        } catch (x) {
          err.textContent = x.message;
        }
      },
    },
    h('h1', {}, 'Magpie console'),
    h('input', { name: 'username', autocomplete: 'username', placeholder: 'Username', 'aria-label': 'Username', required: true }),
    h('input', { name: 'password', type: 'password', autocomplete: 'current-password', placeholder: 'Password', 'aria-label': 'Password', required: true }),
    totp,
    h('button', { type: 'submit' }, 'Sign in'),
    err,
  );
  return form;
}

const TABS = [
  ['users', 'Users'],
  ['groups', 'Groups'],
  ['messages', 'Messages'],
  ['reports', 'Reports'],
  ['services', 'Service accounts'],
  ['operations', 'Operations'],
  ['wallet', 'Wallet'],
  ['instructions', 'Instructions'],
  ['retention', 'Retention'],
  ['audit', 'Audit log'],
  ['trace', 'Message trace'],
  ['account', 'My account'],
];

function shell(content) {
  return [
    h(
      'header',
      {},
      h('h1', {}, 'Magpie console'),
      h('nav', { 'aria-label': 'Console sections' }, TABS.map(([id, label]) => h('button', { 'aria-current': tab === id ? 'page' : false, onclick: () => ((tab = id), render()) }, label))),
      h('span', { class: 'note' }, `${me.username} (${me.role})`),
      h('button', { onclick: () => logout() }, 'Sign out'),
    ),
    content,
  ];
}

function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows));
}

function errorBox() {
  return h('p', { class: 'error', role: 'alert' });
}

async function act(box, fn) {
  box.textContent = '';
  try {
    await fn();
  } catch (x) {
    box.textContent = x.message;
  }
}

function usersView() {
  const out = h('div');
  const err = errorBox();
  const search = async (q) => {
    const r = await call('GET', `/api/console/users?q=${encodeURIComponent(q)}`);
    out.replaceChildren(
      table(
        ['User', 'Id', 'Created', 'State', ''],
        r.users.map((u) => h('tr', {}, h('td', {}, `${u.nickname} (@${u.username})`), h('td', {}, h('code', {}, u.id)), h('td', {}, time(u.createdAt)), h('td', {}, u.deleted ? 'deleted' : u.disabled ? 'disabled' : 'active'), h('td', {}, h('button', { onclick: () => act(err, () => showUser(u.id)) }, 'Open')))),
      ),
    );
  };
  // `said`: the outcome of the action that led here, shown on the refreshed card (not on the one it replaces).
  const showUser = async (id, said = '') => {
    const r = await call('GET', `/api/console/users/${encodeURIComponent(id)}`);
    const u = r.user;
    const result = h('p', { role: 'status' }, said);
    const action = (name, label, cls) =>
      h(
        'button',
        {
          class: cls,
          onclick: () =>
            act(err, async () => {
              const reason = prompt(`Reason to ${label.toLowerCase()} @${u.username}:`);
              if (!reason) return;
              const a = await call('POST', `/api/console/users/${encodeURIComponent(id)}/${name}`, { reason });
              if (a.temporaryPassword) result.textContent = `Temporary password (shown once): ${a.temporaryPassword}`;
              else await showUser(id, `${label}: done${a.revoked !== undefined ? `, ${a.revoked} session(s) ended` : ''}.`);
            }),
        },
        label,
      );
    out.replaceChildren(
      h(
        'div',
        { class: 'card' },
        h('h2', {}, `${u.nickname} (@${u.username})`),
        h('p', {}, 'Id: ', h('code', {}, u.id), ` · created ${time(u.createdAt)} · `, h('strong', { 'data-testid': 'user-state' }, u.deleted ? 'deleted' : u.disabled ? 'disabled' : 'active')),
        me.role !== 'viewer' ? h('p', {}, u.disabled ? action('enable', 'Enable') : action('disable', 'Disable', 'danger'), ' ', action('revoke-sessions', 'Revoke sessions'), ' ', action('reset-password', 'Reset password')) : null,
        result,
        h('h3', {}, `Devices and sessions (${r.sessions.length})`),
        table(['Device', 'Platform', 'App version', 'Signed in', 'Expires'], r.sessions.map((s) => h('tr', {}, h('td', {}, s.deviceId), h('td', {}, s.platform), h('td', {}, s.appVersion || '—'), h('td', {}, time(s.createdAt)), h('td', {}, time(s.expiresAt))))),
      ),
    );
  };
  const form = h(
    'form',
    { class: 'inline', role: 'search', onsubmit: (e) => (e.preventDefault(), act(err, () => search(new FormData(form).get('q')))) },
    h('input', { name: 'q', placeholder: 'User id, username or nickname', 'aria-label': 'Find users', required: true }),
    h('button', { type: 'submit' }, 'Find'),
  );
  return h('section', {}, h('h2', {}, 'Users'), form, err, out);
}

function groupsView() {
  const out = h('div');
  const err = errorBox();
  const form = h(
    'form',
    {
      class: 'inline',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        void act(err, async () => {
          const r = await call('GET', `/api/console/groups?q=${encodeURIComponent(new FormData(form).get('q'))}`);
          out.replaceChildren(
            table(
              ['Name', 'Conversation', 'Kind', 'Members', 'Owner', ''],
              r.groups.map((g) =>
                h(
                  'tr',
                  {},
                  h('td', {}, g.name + (g.dismissed ? ' (dismissed)' : '')),
                  h('td', {}, h('code', {}, g.conv)),
                  h('td', {}, g.kind),
                  h('td', {}, g.memberCount),
                  h('td', {}, h('code', {}, g.owner)),
                  h(
                    'td',
                    {},
                    h(
                      'button',
                      {
                        onclick: () =>
                          act(err, async () => {
                            const m = await call('GET', `/api/console/groups/${encodeURIComponent(g.conv)}/members?limit=500`);
                            out.append(h('div', { class: 'card' }, h('h3', {}, `Members of ${g.name}`), table(['User', 'Role', 'Joined'], m.members.map((x) => h('tr', {}, h('td', {}, h('code', {}, x.userId)), h('td', {}, x.role), h('td', {}, time(x.joinedAt)))))));
                          }),
                      },
                      'Members',
                    ),
                    me.role !== 'viewer' && !g.dismissed
                      ? [
                          ' ',
                          h('button', { onclick: () => act(err, async () => { const to = prompt('New owner (user id of a member):'); const reason = to && prompt('Reason:'); if (to && reason) { await call('POST', `/api/console/groups/${encodeURIComponent(g.conv)}/transfer`, { to, reason }); form.requestSubmit(); } }) }, 'Transfer'),
                          ' ',
                          h('button', { class: 'danger', onclick: () => act(err, async () => { const reason = prompt(`Reason to dismiss ${g.name}:`); if (reason) { await call('POST', `/api/console/groups/${encodeURIComponent(g.conv)}/dismiss`, { reason }); form.requestSubmit(); } }) }, 'Dismiss'),
                        ]
                      : null,
                  ),
                ),
              ),
            ),
          );
        });
      },
    },
    h('input', { name: 'q', placeholder: 'Group name prefix or conversation id', 'aria-label': 'Find groups', required: true }),
    h('button', { type: 'submit' }, 'Find'),
  );
  return h('section', {}, h('h2', {}, 'Groups'), form, err, out);
}

function reportsView() {
  const out = h('div', {}, 'Loading…');
  const err = errorBox();
  const load = async (status = 'open') => {
    const r = await call('GET', `/api/console/reports?status=${status}`);
    out.replaceChildren(
      r.reports.length === 0
        ? h('p', {}, `No ${status} reports.`)
        : table(
            ['When', 'Reporter', 'Target', 'Reason', 'Message', ''],
            r.reports.map((x) =>
              h(
                'tr',
                {},
                h('td', {}, time(x.createdAt)),
                h('td', {}, h('code', {}, x.reporter)),
                h('td', {}, h('code', {}, x.targetUser ?? '—')),
                h('td', {}, x.reason, x.note ? ` — ${x.note}` : ''),
                h('td', {}, x.excerpt ?? '—'),
                h('td', {}, x.status === 'open' && me.role !== 'viewer' ? ['resolved', 'dismissed'].map((s) => h('button', { onclick: () => act(err, async () => (await call('PATCH', `/api/console/reports/${x.id}`, { status: s, resolution: prompt('Note (optional):') ?? '' }), await load(status))) }, s === 'resolved' ? 'Resolve' : 'Dismiss')) : x.status),
              ),
            ),
          ),
    );
  };
  const sel = h('select', { 'aria-label': 'Report status', onchange: () => act(err, () => load(sel.value)) }, ['open', 'resolved', 'dismissed'].map((s) => h('option', { value: s }, s)));
  void act(err, () => load());
  return h('section', {}, h('h2', {}, 'Moderation reports'), h('p', {}, sel), err, out);
}

// Service accounts: create, broadcast now or at a time (all users, a list of ids, a segment of key=value lines), history.
function servicesView() {
  const out = h('div');
  const detail = h('div');
  const err = errorBox();
  const load = async () => {
    const r = await call('GET', '/api/console/services');
    out.replaceChildren(
      r.services.length === 0
        ? h('p', {}, 'No service accounts yet.')
        : table(
            ['Name', 'Id', 'Kind', 'Broadcasts', ''],
            r.services.map((s) => h('tr', {}, h('td', {}, s.name), h('td', {}, h('code', {}, s.id)), h('td', {}, s.marketing ? 'marketing' : 'notices'), h('td', {}, s.lastSeq), h('td', {}, h('button', { onclick: () => act(err, () => open(s)) }, `Open ${s.name}`)))),
          ),
    );
  };
  const audienceOf = (kind, text) => {
    const lines = String(text).split('\n').map((x) => x.trim()).filter(Boolean);
    if (kind === 'all') return { kind };
    if (kind === 'list') return { kind, userIds: lines };
    const attributes = {};
    for (const line of lines) {
      const [k, ...v] = line.split('=');
      const value = v.join('=').trim();
      attributes[k.trim()] = value.includes(',') ? value.split(',').map((x) => x.trim()) : value;
    }
    return { kind, attributes };
  };
  // The form is built once per opened service and never replaced while the operator types in it;
  // after a send only the history tables are reloaded, then the status says what happened.
  const open = async (s) => {
    const history = h('div');
    const refresh = async () => {
      const [b, sch] = await Promise.all([call('GET', `/api/console/services/${s.id}/broadcasts?limit=20`), call('GET', `/api/console/services/${s.id}/schedules?limit=20`)]);
      history.replaceChildren(
        h('h4', {}, 'Broadcasts'),
        table(['Seq', 'When', 'Audience', 'Recipients', 'Title'], b.broadcasts.map((x) => h('tr', {}, h('td', {}, x.seq), h('td', {}, time(x.createdAt)), h('td', {}, x.audience.kind), h('td', { 'data-testid': 'recipients' }, x.audience.kind === 'all' ? 'all' : x.recipients), h('td', {}, x.title)))),
        h('h4', {}, 'Scheduled'),
        table(['Send at', 'Status', 'Audience', 'Title'], sch.schedules.map((x) => h('tr', {}, h('td', {}, time(x.sendAt)), h('td', {}, x.status), h('td', {}, x.audience.kind), h('td', {}, x.title)))),
      );
    };
    await refresh();
    const status = h('p', { role: 'status' });
    const form = h(
      'form',
      {
        class: 'stack',
        onsubmit: (e) => {
          e.preventDefault();
          const button = form.querySelector('button[type=submit]');
          void act(err, async () => {
            const f = new FormData(form);
            const body = { audience: audienceOf(f.get('audience'), f.get('recipients')), title: f.get('title'), body: f.get('body') };
            const at = f.get('sendAt');
            status.textContent = '';
            button.disabled = true;
            try {
              let said;
              if (at) {
                const r = await call('POST', `/api/console/services/${s.id}/schedules`, { ...body, sendAt: new Date(at).getTime() });
                said = `Scheduled for ${time(r.schedule.sendAt)}.`;
              } else {
                const r = await call('POST', `/api/console/services/${s.id}/broadcasts`, body);
                said = `Sent: broadcast ${r.broadcast.seq}${r.broadcast.audience.kind === 'all' ? ' to all users' : `, ${r.broadcast.recipients} recipient(s)`}.`;
              }
              // What was sent is not sent twice by a second click: the message fields empty, the audience stays.
              for (const name of ['title', 'body', 'sendAt']) form.elements.namedItem(name).value = '';
              await Promise.all([refresh(), load()]);
              status.textContent = said;
            } finally {
              button.disabled = false;
            }
          });
        },
      },
      h('label', {}, 'Audience ', h('select', { name: 'audience', 'aria-label': 'Audience' }, h('option', { value: 'all' }, 'All users'), h('option', { value: 'list' }, 'List of user ids'), h('option', { value: 'segment' }, 'Segment (key=value per line)'))),
      h('textarea', { name: 'recipients', rows: 3, placeholder: 'User ids, or key=value lines (a,b for any of several values)', 'aria-label': 'Recipients' }),
      h('input', { name: 'title', placeholder: 'Title', 'aria-label': 'Title', required: true, maxlength: 200 }),
      h('textarea', { name: 'body', rows: 3, placeholder: 'Text', 'aria-label': 'Text', maxlength: 2000 }),
      h('label', {}, 'Send at (empty: now) ', h('input', { name: 'sendAt', type: 'datetime-local', step: 1, 'aria-label': 'Send at' })),
      h('button', { type: 'submit' }, 'Send'),
    );
    detail.replaceChildren(h('div', { class: 'card' }, h('h3', {}, `${s.name} `, h('code', {}, s.id)), me.role !== 'viewer' ? form : null, status, history));
  };
  const create = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        void act(err, async () => {
          const f = new FormData(create);
          await call('POST', '/api/console/services', { name: f.get('name'), avatar: f.get('avatar') || '', marketing: f.get('marketing') === 'on' });
          create.reset();
          await load();
        });
      },
    },
    h('input', { name: 'name', placeholder: 'Service name', 'aria-label': 'Service name', required: true }),
    h('input', { name: 'avatar', placeholder: 'Avatar URL (optional)', 'aria-label': 'Avatar URL' }),
    h('label', {}, h('input', { name: 'marketing', type: 'checkbox', checked: true }), ' Marketing (pushes count against the marketing quota)'),
    h('button', { type: 'submit' }, 'Create service'),
  );
  void act(err, load);
  return h('section', {}, h('h2', {}, 'Service accounts'), me.role !== 'viewer' ? create : null, err, out, detail);
}

function chart(title, seriesMap, keys, rate) {
  const box = h('div', { class: 'card' }, h('h3', {}, title));
  const present = keys.filter((k) => seriesMap[k]?.length);
  if (present.length === 0 || typeof uPlot === 'undefined') {
    box.append(h('p', { class: 'note' }, 'No samples yet.'));
    return box;
  }
  const xs = seriesMap[present[0]].map(([t]) => t / 1000);
  const ys = present.map((k) => {
    const pts = seriesMap[k];
    return xs.map((_, i) => (rate ? (i === 0 ? 0 : Math.max(0, (pts[i]?.[1] ?? 0) - (pts[i - 1]?.[1] ?? 0))) : (pts[i]?.[1] ?? 0)));
  });
  const colors = ['#0a7a5a', '#2b6cb0', '#c05621', '#805ad5', '#c53030', '#2f855a', '#b7791f'];
  // eslint-disable-next-line no-undef
  new uPlot({ width: 480, height: 200, series: [{}, ...present.map((k, i) => ({ label: k, stroke: colors[i % colors.length] }))], axes: [{}, {}] }, [xs, ...ys], box);
  return box;
}

function operationsView() {
  const out = h('div', {}, 'Loading…');
  const err = errorBox();
  void act(err, async () => {
    const r = await call('GET', '/api/console/metrics');
    const s = r.series;
    const keys = (prefix) => Object.keys(s).filter((k) => k.startsWith(prefix)).sort();
    const last = (k) => s[k]?.at(-1)?.[1] ?? 0;
    const first = last('downlink.acked_first');
    const all = keys('downlink.').reduce((n, k) => n + last(k), 0);
    out.replaceChildren(
      h('p', { class: 'note' }, `This node, one sample every ${r.intervalMs / 1000} s (counters shown per interval). First-attempt downlink success: ${all ? ((100 * first) / all).toFixed(1) : '—'} % of ${all} tracked deliveries.`),
      h(
        'div',
        { class: 'charts' },
        chart('Push funnel', s, keys('push.'), true),
        chart('Messages', s, ['sends', 'deliveries', 'acks'], true),
        chart('Downlink outcomes (compensation)', s, keys('downlink.'), true),
        chart('Retries', s, ['retries'], true),
        chart('Connections', s, ['connections'], false),
        chart('Webhooks', s, keys('webhooks.'), true),
      ),
    );
  });
  return h('section', {}, h('h2', {}, 'Operations'), err, out);
}

function walletView() {
  const out = h('div');
  const err = errorBox();
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        void act(err, async () => {
          const id = new FormData(form).get('user');
          const r = await call('GET', `/api/console/wallet/${encodeURIComponent(id)}/entries?limit=100`);
          out.replaceChildren(h('p', {}, `Balance: ${(r.balance / 100).toFixed(2)}`), table(['Entry', ''], r.entries.map((x) => h('tr', {}, h('td', {}, h('code', {}, JSON.stringify(x))), h('td', {})))));
        });
      },
    },
    h('input', { name: 'user', placeholder: 'User id', 'aria-label': 'Ledger of user', required: true }),
    h('button', { type: 'submit' }, 'Ledger'),
    h('button', { type: 'button', onclick: () => act(err, async () => out.replaceChildren(h('pre', {}, JSON.stringify(await call('GET', '/api/console/wallet/reconcile'), null, 2)))) }, 'Reconcile'),
  );
  return h('section', {}, h('h2', {}, 'Wallet'), form, err, out);
}

/** Instructions sent (operator token or automation) and each target device's outcome. */
function instructionsView() {
  const out = h('div', {}, 'Loading…');
  const err = errorBox();
  const outcome = (t) => `${t.deviceId}: ${t.status}${t.result !== null && t.result !== undefined ? ` ${JSON.stringify(t.result)}` : ''}`;
  const load = (userId) =>
    act(err, async () => {
      const r = await call('GET', `/api/console/instructions?limit=200${userId ? `&userId=${encodeURIComponent(userId)}` : ''}`);
      out.replaceChildren(
        r.instructions.length === 0
          ? h('p', {}, 'No instructions.')
          : table(
              ['Sent', 'User', 'Kind', 'Issued by', 'Outcome per device'],
              r.instructions.map((i) => h('tr', { 'data-instruction-id': i.id }, h('td', {}, time(i.createdAt)), h('td', {}, h('code', {}, i.userId)), h('td', {}, i.kind), h('td', {}, i.issuedBy), h('td', {}, i.targets.length ? i.targets.map(outcome).join('; ') : 'no device'))),
            ),
      );
    });
  const form = h(
    'form',
    { class: 'inline', role: 'search', onsubmit: (e) => (e.preventDefault(), load(new FormData(form).get('user').trim())) },
    h('input', { name: 'user', placeholder: 'User id (empty: everyone)', 'aria-label': 'Instructions of user' }),
    h('button', { type: 'submit' }, 'Show'),
  );
  void load('');
  return h('section', {}, h('h2', {}, 'Instructions'), form, err, out);
}

function auditView() {
  const out = h('div', {}, 'Loading…');
  const err = errorBox();
  void act(err, async () => {
    const r = await call('GET', '/api/console/audit?limit=200');
    out.replaceChildren(table(['When', 'Admin', 'Action', 'Target', 'Detail'], r.entries.map((x) => h('tr', {}, h('td', {}, time(x.at)), h('td', {}, x.admin), h('td', {}, x.action), h('td', {}, h('code', {}, x.target)), h('td', {}, h('code', {}, JSON.stringify(x.detail)))))));
  });
  return h('section', {}, h('h2', {}, 'Audit log'), err, out);
}

function accountView() {
  const err = errorBox();
  const out = h('div');
  const enroll = async () => {
    const r = await call('POST', '/api/console/totp');
    const code = h('input', { inputmode: 'numeric', placeholder: '6-digit code', 'aria-label': 'Code from the authenticator' });
    out.replaceChildren(
      h('p', {}, 'Add this secret to an authenticator app, then enter its current code:'),
      h('p', {}, h('code', { 'data-testid': 'totp-secret' }, r.secret)),
      h('p', { class: 'note' }, h('code', {}, r.uri)),
      code,
      h('button', { onclick: () => act(err, async () => (await call('POST', '/api/console/totp/confirm', { code: code.value }), (me.totp = true), out.replaceChildren(h('p', { role: 'status' }, 'Two-step sign-in is on.')))) }, 'Confirm'),
    );
  };
  return h('section', {}, h('h2', {}, 'My account'), h('p', {}, `${me.username}, role ${me.role}. Two-step sign-in (TOTP): ${me.totp ? 'on' : 'off'}.`), me.totp ? null : h('button', { onclick: () => act(err, enroll) }, 'Turn on two-step sign-in'), err, out);
}

/**
 * Extra per-message links on the Messages page: each entry is a function (message) => element
 * or null (e.g. a "Trace" link to what happened to the message), shown in the row's last cell.
 */
const MESSAGE_LINKS = [];

function excerpt(m) {
  const b = m.body;
  const text = typeof b?.text === 'string' ? b.text : JSON.stringify(b);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

function messagesView() {
  const out = h('div');
  const err = errorBox();
  const result = h('p', { role: 'status' });
  let reload = null;
  const action = (m, name, label, cls) =>
    h(
      'button',
      {
        class: cls,
        onclick: () =>
          act(err, async () => {
            const reason = prompt(`Reason to ${label.toLowerCase()} message ${m.conv} #${m.seq}:`);
            if (!reason) return;
            const r = await call('POST', `/api/console/messages/${encodeURIComponent(m.id)}/${name}`, { reason });
            result.textContent = `${label}: done${r.event ? ` (event #${r.event.seq} told every device)` : ''}.`;
            if (reload) await reload();
          }),
      },
      label,
    );
  const rows = (messages) =>
    table(
      ['Seq', 'Id', 'Sender', 'Kind', 'Content', 'Sent', ''],
      messages.map((m) =>
        h(
          'tr',
          { 'data-message-id': m.id },
          h('td', {}, m.seq),
          h('td', {}, h('code', {}, m.id)),
          h('td', {}, h('code', {}, m.sender)),
          h('td', {}, m.kind),
          h('td', {}, excerpt(m)),
          h('td', {}, time(m.time)),
          h('td', { class: 'message-links' }, me.role !== 'viewer' && m.kind !== 'recalled' ? [action(m, 'recall', 'Recall'), ' ', action(m, 'delete', 'Delete', 'danger')] : null, MESSAGE_LINKS.map((f) => f(m))),
        ),
      ),
    );
  const byId = async (id) => {
    const r = await call('GET', `/api/console/messages/${encodeURIComponent(id)}`);
    const c = r.conversation;
    reload = () => byId(id);
    out.replaceChildren(h('p', {}, 'Conversation ', h('code', {}, c.id), ` (${c.kind}), last seq ${c.lastSeq}, purged up to ${c.purgedSeq}.`), rows([r.message]));
  };
  const listConv = async (conv, before) => {
    const r = await call('GET', `/api/console/conversations/${encodeURIComponent(conv)}/messages?limit=50${before ? `&before=${before}` : ''}`);
    reload = () => listConv(conv, before);
    const older = r.more && r.messages.length ? h('button', { onclick: () => act(err, () => listConv(conv, r.messages.at(-1).seq)) }, 'Older') : null;
    out.replaceChildren(h('p', {}, `${r.messages.length} message(s), last seq ${r.lastSeq}, purged up to ${r.purgedSeq}.`), rows(r.messages), older ?? '');
  };
  const idForm = h(
    'form',
    { class: 'inline', role: 'search', onsubmit: (e) => (e.preventDefault(), (result.textContent = ''), act(err, () => byId(new FormData(idForm).get('id').trim()))) },
    h('input', { name: 'id', placeholder: 'Message id', 'aria-label': 'Message id', required: true }),
    h('button', { type: 'submit' }, 'Look up'),
  );
  const convForm = h(
    'form',
    { class: 'inline', role: 'search', onsubmit: (e) => (e.preventDefault(), (result.textContent = ''), act(err, () => listConv(new FormData(convForm).get('conv').trim()))) },
    h('input', { name: 'conv', placeholder: 'Conversation id (d:…, g:…)', 'aria-label': 'Conversation id', required: true }),
    h('button', { type: 'submit' }, 'List messages'),
  );
  return h('section', {}, h('h2', {}, 'Messages'), idForm, convForm, err, result, out);
}

function retentionView() {
  const out = h('div', {}, 'Loading…');
  const err = errorBox();
  const result = h('p', { role: 'status' });
  const days = (d) => (d > 0 ? `${d} day(s)` : 'forever');
  const load = async () => {
    const r = await call('GET', '/api/console/retention');
    const s = r.settings;
    const convForm = h(
      'form',
      {
        class: 'inline',
        onsubmit: (e) => {
          e.preventDefault();
          const f = new FormData(convForm);
          void act(err, async () => {
            const c = await call('PUT', `/api/console/retention/conversations/${encodeURIComponent(f.get('conv').trim())}`, { days: Number(f.get('days')), reason: f.get('reason') });
            result.textContent = `${c.conv}: kept ${days(c.days)}, purged up to seq ${c.purgedSeq}.`;
            await load();
          });
        },
      },
      h('input', { name: 'conv', placeholder: 'Conversation id', 'aria-label': 'Conversation to override', required: true }),
      h('input', { name: 'days', type: 'number', min: 0, placeholder: 'Days (0 = forever)', 'aria-label': 'Retention days', required: true }),
      h('input', { name: 'reason', placeholder: 'Reason', 'aria-label': 'Reason', required: true }),
      h('button', { type: 'submit' }, 'Set override'),
    );
    out.replaceChildren(
      h('p', {}, `Direct: ${days(s.directDays)} · Groups: ${days(s.groupDays)} · Super groups: ${days(s.superGroupDays)} · every ${Math.round(s.intervalMs / 1000)} s, ${s.batchSize} per batch, ${s.pauseMs} ms pause.`),
      h('p', { class: 'note' }, r.lease ? `Purging now: ${r.lease.holder} (lease until ${time(r.lease.until)}).` : 'No purge running.'),
      me.role !== 'viewer' ? h('div', {}, h('p', {}, h('button', { onclick: () => act(err, async () => { const x = await call('POST', '/api/console/retention/run'); result.textContent = `Run ${x.outcome}: ${x.messages} message(s) purged in ${x.conversations} conversation(s).`; await load(); }) }, 'Run purge now')), convForm) : '',
      h('h3', {}, 'Overrides'),
      table(
        ['Conversation', 'Kept', 'Reason', 'Set by', 'When', ''],
        r.overrides.map((o) =>
          h(
            'tr',
            {},
            h('td', {}, h('code', {}, o.conv)),
            h('td', {}, days(o.days)),
            h('td', {}, o.reason),
            h('td', {}, o.setBy),
            h('td', {}, time(o.setAt)),
            h('td', {}, me.role !== 'viewer' ? h('button', { onclick: () => act(err, async () => { const reason = prompt(`Reason to remove the override of ${o.conv}:`); if (reason) { await call('DELETE', `/api/console/retention/conversations/${encodeURIComponent(o.conv)}`, { reason }); await load(); } }) }, 'Remove') : null),
          ),
        ),
      ),
      h('h3', {}, 'Recent runs'),
      table(['Finished', 'Node', 'Outcome', 'Conversations', 'Messages purged'], r.runs.map((x) => h('tr', {}, h('td', {}, time(x.finishedAt)), h('td', {}, x.node), h('td', {}, x.outcome), h('td', {}, x.conversations), h('td', {}, x.messages)))),
    );
  };
  void act(err, load);
  return h('section', {}, h('h2', {}, 'Retention'), err, result, out);
}

// The Messages page links each message to its trace (what happened to it, stage by stage).
MESSAGE_LINKS.push((m) => h('a', { href: `#/messages/${encodeURIComponent(m.id)}/trace` }, 'Trace'));

const VIEWS = { messages: messagesView, retention: retentionView, users: usersView, groups: groupsView, reports: reportsView, services: servicesView, operations: operationsView, wallet: walletView, instructions: instructionsView, audit: auditView, account: accountView, trace: () => traceView({ h, call, errorBox, act }, traceIdFromHash(location.hash)) };
// #/messages/<id>/trace opens that message's trace.
if (traceIdFromHash(location.hash)) tab = 'trace';
window.addEventListener('hashchange', () => traceIdFromHash(location.hash) && ((tab = 'trace'), render()));

async function render() {
  if (!token) {
    app.replaceChildren(loginView());
    return;
  }
  if (!me) {
    try {
      me = (await call('GET', '/api/console/me')).admin;
    } catch {
      return;
    }
  }
  app.replaceChildren(...shell(VIEWS[tab]()));
}

void render();
