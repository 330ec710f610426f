// The console's message trace view (#/messages/<id>/trace): every node's journal entries of
// one message's stages on a timeline, from GET /api/console/messages/:id/trace.

const STAGE_TEXT = {
  send: 'Send (request → reply)',
  commit: 'Commit (durable)',
  fanout: 'Fan-out',
  deliver: 'Delivered to device',
  retry: 'Retry',
  ack: 'ACK from device',
  pulled: 'Pulled by sync',
  offline: 'Device offline → push',
  gave_up: 'No ACK → push',
  push: 'Push job',
};

/** The message id named by a `#/messages/<id>/trace` address, or null. */
export function traceIdFromHash(hash) {
  const m = /^#\/messages\/([^/]+)\/trace$/.exec(hash);
  return m ? decodeURIComponent(m[1]) : null;
}

const ms = (x) => (x < 1 ? `${x.toFixed(2)} ms` : x < 1000 ? `${x.toFixed(1)} ms` : `${(x / 1000).toFixed(2)} s`);

function timeline(h, trace) {
  const t0 = trace.events[0].at;
  const end = Math.max(...trace.events.map((e) => e.at + (e.durMs ?? 0)));
  const span = Math.max(end - t0, 1);
  const rows = trace.events.map((e) => {
    const bar = h('div', { class: `trace-bar stage-${e.stage}`, title: `${e.stage} at +${ms(e.at - t0)}` });
    bar.style.left = `${Math.min(((e.at - t0) / span) * 100, 99)}%`;
    bar.style.width = e.durMs ? `${Math.max((e.durMs / span) * 100, 0.5)}%` : '';
    const who = [e.userId, e.deviceId].filter(Boolean).join(' / ');
    const facts = [e.inboxSeq !== undefined ? `inboxSeq ${e.inboxSeq}` : '', e.attempt !== undefined ? `attempt ${e.attempt}` : '', ...Object.entries(e.detail ?? {}).map(([k, v]) => `${k} ${v}`)].filter(Boolean).join(', ');
    return h(
      'tr',
      { 'data-stage': e.stage },
      h('td', {}, `+${ms(e.at - t0)}`),
      h('td', {}, STAGE_TEXT[e.stage] ?? e.stage),
      h('td', {}, h('code', {}, e.node)),
      h('td', {}, who ? h('code', {}, who) : '—'),
      h('td', {}, e.durMs !== undefined ? ms(e.durMs) : '—'),
      h('td', {}, facts || '—'),
      h('td', { class: 'trace-lane' }, bar),
    );
  });
  return h(
    'table',
    { class: 'trace', 'aria-label': `Trace of message ${trace.msgId}` },
    h('thead', {}, h('tr', {}, ['Time', 'Stage', 'Node', 'User / device', 'Took', 'Details', 'Timeline'].map((x) => h('th', {}, x)))),
    h('tbody', {}, rows),
  );
}

/** The view: a message id field and, once traced, the timeline. */
export function traceView({ h, call, errorBox, act }, initialId) {
  const out = h('div');
  const err = errorBox();
  const show = (id) =>
    act(err, async () => {
      out.replaceChildren(h('p', {}, 'Loading…'));
      const trace = await call('GET', `/api/console/messages/${encodeURIComponent(id)}/trace`);
      out.replaceChildren(
        h('p', { class: 'note', role: 'status' }, `${trace.events.length} events from ${trace.nodes.length} node(s): ${trace.nodes.join(', ')}${trace.dropped ? `; ${trace.dropped} more not kept` : ''}.`),
        timeline(h, trace),
      );
    }).then(() => {
      if (err.textContent) out.replaceChildren();
    });
  const input = h('input', { name: 'msg', placeholder: 'Message id (m…)', 'aria-label': 'Message id', required: true, value: initialId ?? '' });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        const id = input.value.trim();
        if (!id) return;
        history.replaceState(null, '', `#/messages/${encodeURIComponent(id)}/trace`);
        void show(id);
      },
    },
    input,
    h('button', { type: 'submit' }, 'Trace'),
  );
  if (initialId) void show(initialId);
  return h('section', {}, h('h2', {}, 'Message trace'), h('p', { class: 'note' }, 'What happened to one message: each stage with its time and the node that saw it (each node keeps its last tracing.journalSize messages).'), form, err, out);
}
