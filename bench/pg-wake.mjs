#!/usr/bin/env node
/**
 * How much PostgreSQL backend CPU a trivial statement (`SELECT 1`) costs depending on how often
 * its backend runs one: a pool of N connections gets one statement every M ms (postgres.js hands
 * each to the connection idle the longest, so each backend wakes every N × M ms), optionally
 * while another connection updates 90 rows 20 times a second. CPU from /proc/PID/schedstat
 * (PostgreSQL on this machine); a scratch database `magpie_pg_wake`, dropped after.
 *
 *   node bench/pg-wake.mjs <connections> <interval ms> <writer 0|1> [seconds]
 *
 * MAGPIE_TEST_PG: the server (default postgres://postgres@127.0.0.1:5432/test).
 */
import postgres from 'postgres';
import { readFileSync } from 'node:fs';
const [conns, every, writer, secs = '15'] = process.argv.slice(2).map(Number);
const u = new URL(process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test');
const base = `${u.protocol}//${u.username}${u.password ? ':' + u.password : ''}@${u.host}/`;
const admin = postgres(u.toString(), { max: 1, onnotice: () => {} });
const db = 'magpie_pg_wake';
await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
await admin.unsafe(`CREATE DATABASE ${db}`);
const w = postgres(base + db, { max: 1, onnotice: () => {}, connection: { application_name: 'writer' } });
await w.unsafe(`CREATE TABLE t (id text PRIMARY KEY, v bigint NOT NULL) WITH (fillfactor = 80); INSERT INTO t SELECT 'u' || g, 0 FROM generate_series(1, 90) g`);
const pool = postgres(base + db, { max: conns, onnotice: () => {}, connection: { application_name: 'pool' } });
await Promise.all(Array.from({ length: conns }, () => pool.begin(async (q) => { await q`SELECT 1`; await q`SELECT pg_sleep(0.05)`; })));
const ns = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
const pids = (await admin`SELECT pid FROM pg_stat_activity WHERE datname = ${db} AND application_name = 'pool'`).map((r) => r.pid);
const a = pids.reduce((s, p) => s + ns(p), 0);
const end = Date.now() + secs * 1000;
let polls = 0;
const poller = (async () => { while (Date.now() < end) { await pool`SELECT 1`; polls++; await new Promise((r) => setTimeout(r, every)); } })();
const ids = Array.from({ length: 90 }, (_, i) => 'u' + (i + 1));
while (writer && Date.now() < end) { await w.begin(async (q) => { await q`UPDATE t SET v = v + 1 WHERE id = ANY(${ids})`; }); await new Promise((r) => setTimeout(r, 50)); }
await poller;
const b = pids.reduce((s, p) => s + ns(p), 0);
console.log(`${conns} connections, SELECT 1 every ${every} ms, writer ${writer ? 'on' : 'off'}: ${polls} statements, ${((b - a) / 1e6 / polls).toFixed(3)} ms backend CPU each`);
await pool.end(); await w.end();
await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
await admin.end();
