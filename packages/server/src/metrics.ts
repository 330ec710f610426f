import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { walCoalesceStats, walCoalescingActive } from './store/sqlite-wal-coalesce.ts';
import { TalliedHistogram } from './tallied-histogram.ts';
import { pgStatementCounts, statementLabel } from './db/statement-counts.ts';

/**
 * Prometheus metrics of one server instance (served at /metrics). `processMetrics: false` leaves
 * out prom-client's process metrics, whose event-loop delay monitor and GC observer run for the
 * rest of the process once created (the event loop's warm-up nodes, loop-warmup.ts, are stopped
 * after a few seconds and must leave nothing running).
 */
export function createMetrics(opts: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'magpie_process_' });
  const m = {
    registry,
    connections: new Gauge({ name: 'magpie_connections', help: 'Open WebSocket connections (authenticated or not)', registers: [registry] }),
    sends: new Counter({ name: 'magpie_sends_total', help: 'Send requests by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    groupPosts: new Counter({ name: 'magpie_group_posts_routed_total', help: 'Cluster group routing: normal-group posts forwarded to their owner node (forwarded), forwards that failed in transit and were appended here (retried_here), forwarded posts this node appended as owner (served)', labelNames: ['route'] as const, registers: [registry] }),
    commitBatch: new Histogram({
      name: 'magpie_commit_batch_size',
      help: 'Messages per group commit',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'magpie_commit_seconds',
      help: 'Time from send received to durable commit',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    deliveries: new Counter({ name: 'magpie_deliveries_total', help: 'Live frames addressed to a connected device', labelNames: ['type'] as const, registers: [registry] }),
    acks: new Counter({ name: 'magpie_acks_total', help: 'Cumulative ACK frames received', registers: [registry] }),
    ackRoutes: new Counter({ name: 'magpie_acks_routed_total', help: 'Cluster: device ACKs forwarded to the node whose fan-out delivered the message (forwarded), forwards that failed and were written here (written_here), ACKs other nodes forwarded that this node wrote (served)', labelNames: ['route'] as const, registers: [registry] }),
    syncs: new Counter({ name: 'magpie_syncs_total', help: 'Sync answers by mode', labelNames: ['mode'] as const, registers: [registry] }),
    syncItems: new Histogram({ name: 'magpie_sync_items', help: 'Inbox items per sync page', buckets: [0, 1, 10, 50, 100, 200, 500, 1000], registers: [registry] }),
    downlinkEnds: new Counter({
      name: 'magpie_downlink_deliveries_total',
      help: 'Tracked live deliveries by how they ended: acked_first (first-attempt downlink success), acked_retry (arrival by retry), pulled (arrival by pull), offline (handed to offline push), gave_up, overflow',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    retries: new Counter({ name: 'magpie_retries_total', help: 'Downlink retries sent, by attempt number', labelNames: ['attempt'] as const, registers: [registry] }),
    retriesHeld: new Counter({ name: 'magpie_retries_held_total', help: 'Due downlink retries held back while the event loop lagged beyond retry.holdLagMs or the connection was held unread by this server (each counted once per attempt)', registers: [registry] }),
    // Observed once per ACKed delivery: through a tally (tallied-histogram.ts).
    arrivalSeconds: new TalliedHistogram({
      name: 'magpie_arrival_seconds',
      help: 'Time from the first live send to arrival at the device, by path (ack = first attempt, retry, pull)',
      labelNames: ['via'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    compensationSeconds: new Histogram({
      name: 'magpie_compensation_arrival_seconds',
      help: 'For messages sent live but obtained by the client only by pulling: time from the live send to that pull',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    retryArrivalSeconds: new Histogram({
      name: 'magpie_retry_arrival_seconds',
      help: 'For messages that arrived by a retry: time from the first live send to the ACK',
      buckets: [0.5, 1, 2, 5, 10, 20, 40, 60, 120, 300],
      registers: [registry],
    }),
    errors: new Counter({ name: 'magpie_errors_total', help: 'Typed errors sent to clients', labelNames: ['code'] as const, registers: [registry] }),
    refusedConnections: new Counter({ name: 'magpie_refused_connections_total', help: 'TCP connections dropped at accept, by cap (ip_cap, server_cap)', labelNames: ['reason'] as const, registers: [registry] }),
    closes: new Counter({ name: 'magpie_closes_total', help: 'Connections closed by the server, by reason', labelNames: ['reason'] as const, registers: [registry] }),
  };
  const perStatement = process.env.MAGPIE_DB_STATEMENT_STATS === '1';
  new Counter({
    name: 'magpie_db_statements_total',
    help: 'Statements sent to PostgreSQL (BEGIN and COMMIT included); by statement (its first words) when MAGPIE_DB_STATEMENT_STATS=1',
    labelNames: ['statement'] as const,
    registers: [registry],
    collect() {
      this.reset();
      let total = 0;
      const by = new Map<string, number>();
      for (const [text, n] of pgStatementCounts()) {
        total += n;
        if (perStatement) {
          const label = statementLabel(text);
          by.set(label, (by.get(label) ?? 0) + n);
        }
      }
      if (perStatement) for (const [label, n] of by) this.inc({ statement: label }, n);
      else if (total > 0) this.inc(total);
    },
  });
  new Counter({
    name: 'magpie_sqlite_wal_writes_total',
    help: 'SQLite WAL write coalescing (native/walbuf.c), whole process: WAL writes SQLite made into the buffer (absorbed), write calls that put the buffered runs into the file (flush_writes), commits/runs flushed (flushes)',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const s = walCoalescingActive() ? walCoalesceStats() : null;
      if (!s) return;
      this.inc({ kind: 'absorbed' }, s.writesAbsorbed);
      this.inc({ kind: 'flush_writes' }, s.flushWrites);
      this.inc({ kind: 'flushes' }, s.flushes);
    },
  });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
