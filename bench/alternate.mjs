#!/usr/bin/env node
/**
 * Run one benchmark alternately against several commits, so each sees the same machine
 * conditions (a same-window before/after comparison):
 *
 *   node bench/alternate.mjs --commits 2be6ebc,main,WORKTREE --rounds 3 -- bench/one-to-one.ts --users 2000 --rate 2000 --duration 10
 *
 * - Each commit gets its own git worktree (detached, under --cache, default
 *   $TMPDIR/magpie-alternate/<sha>), installed and built once and reused by later runs:
 *   node_modules is copied from this checkout, `npm install` runs only when the commit's
 *   package-lock.json differs, then `npm run build`. `WORKTREE` is this checkout as it is
 *   (uncommitted changes included; its build is refreshed by the bench itself).
 * - The command after `--` is a bench script path (relative to the repository root) and its
 *   arguments; it runs in each commit's tree with that commit's own version of the script
 *   (`.ts` through tsx, `.mjs`/`.js` with node).
 * - Round r runs the commits in an order rotated by r (A B C, B C A, C A B, …), so a slow drift
 *   of the machine does not always favour the same commit.
 * - From each run's output it reads acked/s (bench:groups: deliveries/s; bench:redpacket:
 *   opens/s of its first scenario), the ACK (bench:redpacket: open) and end-to-end p99 and the
 *   server CPU (% of a core, µs per message or per open where printed; bench:redpacket also
 *   the load generator's µs per open and its event-loop delay p99, columns of their own), and records the 1-minute load
 *   average before the run. It prints every run, then the median per commit. `--json FILE`
 *   writes all of it.
 * - --script-from WORKTREE: run this checkout's version of the bench script (and its load
 *   generator) for every commit, against that commit's compiled server
 *   (MAGPIE_BENCH_SERVER_MAIN=<tree>/packages/server/dist/main.js, honoured by benches that
 *   start the server through bench/lib/server.ts SERVER_MAIN). For comparing servers when the
 *   bench itself changed between the commits; the commits must share the database schema
 *   (the bench seeds with this checkout's migrations).
 *
 * - bench/connect.ts: it reads the storm's seconds and the server CPU µs per connect + hello
 *   (in the storm, and with its deferred work) and per close, and prints those columns instead.
 * - `--same-bench`: every commit runs this checkout's bench/ directory (copied over the
 *   commit's own bench/ for the run, then restored with git), so a load generator changed
 *   since the old commit measures both the same way. Only bench/ is copied, never server code:
 *   each commit's server is still launched as that commit ships it (node flags and environment
 *   from its packages/server/launch.json, none when it has no such file; bench/lib/server.ts).
 *
 * - A commit spec may carry environment for its runs after `@`: `WORKTREE@MAGPIE_X=1`, or several
 *   joined by `+` (`main@A=1+B=2`); the same commit may then appear more than once (one column
 *   per environment), e.g. --commits WORKTREE,WORKTREE@MAGPIE_SEARCH_INDEX_DELAY_MS=600000. The
 *   environment reaches the bench and the server it starts (bench/lib/server.ts passes it on).
 *
 * Options: --commits A,B,… (required) --rounds N (3) --cache DIR --json FILE --pause S (2, between runs) --same-bench
 *   --script-from WORKTREE
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const sep = process.argv.indexOf('--');
if (sep < 0 || sep === process.argv.length - 1) usage('missing `-- <bench script> [args…]`');
const { values: o } = parseArgs({
  args: process.argv.slice(2, sep),
  options: {
    commits: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    cache: { type: 'string', default: join(tmpdir(), 'magpie-alternate') },
    json: { type: 'string' },
    pause: { type: 'string', default: '2' },
    'same-bench': { type: 'boolean', default: false },
    'script-from': { type: 'string' },
  },
  strict: true,
});
const [script, ...benchArgs] = process.argv.slice(sep + 1);
const rounds = Number(o.rounds);
if (!o.commits) usage('--commits is required');
if (!(Number.isInteger(rounds) && rounds >= 1)) usage('--rounds must be an integer ≥ 1');
if (o['script-from'] !== undefined && o['script-from'] !== 'WORKTREE') usage('--script-from takes WORKTREE');

function usage(msg) {
  console.error(`alternate: ${msg}\nusage: node bench/alternate.mjs --commits 2be6ebc,main,WORKTREE [--rounds 3] [--cache DIR] [--json FILE] -- bench/one-to-one.ts [args…]`);
  process.exit(2);
}

const log = (s) => console.log(`[alternate] ${s}`);
const git = (...args) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();

/** A commit spec (`<commit>[@K=V+K=V…]`) → the tree to run in, with its label and environment. */
function prepare(fullSpec) {
  const at = fullSpec.indexOf('@');
  const spec = at < 0 ? fullSpec : fullSpec.slice(0, at);
  const env = {};
  if (at >= 0) {
    for (const kv of fullSpec.slice(at + 1).split('+')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) usage(`bad environment "${kv}" in ${fullSpec} (want K=V)`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  const tree = prepareTree(spec);
  const suffix = at < 0 ? '' : ` @${fullSpec.slice(at + 1)}`;
  return { ...tree, label: tree.label + suffix, env };
}

function prepareTree(spec) {
  if (spec === 'WORKTREE') {
    const dirty = git('status', '--porcelain', '--', 'packages', 'bench') !== '';
    return { spec, label: `WORKTREE ${git('rev-parse', '--short', 'HEAD')}${dirty ? '+changes' : ''}`, dir: ROOT };
  }
  const sha = git('rev-parse', '--verify', `${spec}^{commit}`);
  const short = sha.slice(0, 10);
  const dir = join(resolve(o.cache), short);
  const ready = join(dir, '.alternate-ready');
  if (!existsSync(ready)) {
    log(`${spec} (${short}): preparing ${dir} (once)`);
    if (existsSync(dir)) {
      spawnSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
    mkdirSync(resolve(o.cache), { recursive: true });
    run('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, sha]);
    // Seed the dependencies from this checkout (the native builds are the slow part), then
    // let npm reconcile them only where the commit's lock file differs.
    cpSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    const sameLock = readIf(join(ROOT, 'package-lock.json')) === readIf(join(dir, 'package-lock.json'));
    if (!sameLock) run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], dir);
    run('npm', ['run', 'build'], dir);
    writeFileSync(ready, `${sha}\n`);
  }
  return { spec, label: `${spec === short || sha.startsWith(spec) ? short : `${spec} ${short}`}`, dir };
}

function readIf(path) {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

function run(cmd, args, cwd = ROOT) {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

/**
 * The numbers a run printed: bench/one-to-one.ts's summary lines, or bench/group-fanout.ts's
 * (deliveries/s, send → ACK, send → LAST member; its first scenario). NaN where absent.
 */
function parseResult(out) {
  const num = (...res) => {
    for (const re of res) {
      const m = re.exec(out);
      if (m) return Number(m[1]);
    }
    return NaN;
  };
  return {
    msgPerS: num(/^acked\/s\s+([\d.]+)/m, /^deliveries\/s\s+([\d.]+)/m, /^opens\/s\s+([\d.]+)/m),
    ackP99: num(/^(?:ACK latency|send → ACK|open latency)\s.*?p99 ([\d.]+) ms/m),
    // bench/cluster.ts: `group: … send → last member p50 … ms, p99 … ms`.
    e2eP99: num(/^(?:end-to-end|send → LAST member)\s.*?p99 ([\d.]+) ms/m, /^group: .*send → last member p50 [\d.]+ ms, p99 ([\d.]+) ms/m),
    cpuPct: num(/^CPU\s+server ([\d.]+)% of one core/m, /^server CPU\s.*?\((\d+)% of one core; \/proc/m, /^in-process CPU\s.*?; (\d+)% of one core\)/m),
    cpuUsPerMsg: num(/\(([\d.]+) µs per message/, /^server CPU\s+([\d.]+) µs per open/m, /^in-process CPU\s+([\d.]+) µs per open/m) || groupCpuUsPerMsg(out),
    genUsPerMsg: num(/^generator CPU\s+([\d.]+) µs per open/m),
    // bench:redpacket: the load generator's own event-loop delay (part of every latency it reports)
    genLoopP99: num(/^generator loop\s+delay p99 ([\d.]+) ms/m),
    // bench/one-to-one.ts --saturate: the event loop's share (thread `main`)
    loopUsPerMsg: num(/^server threads\s+µs\/msg: .*?\bmain ([\d.]+)/m),
    // bench/connect.ts
    stormS: num(/^storm\s+([\d.]+) s/m),
    connectUs: num(/^server CPU\s+([\d.]+) µs per connect \+ hello/m),
    connectAllUs: num(/^with deferred\s+([\d.]+) µs per connect/m),
    closeUs: num(/^disconnect\s+([\d.]+) µs per close/m),
  };
}

/**
 * bench:groups output from before it printed µs per message: the server's CPU share times the
 * run (duration + drain, both from the bench's arguments) over the messages acked. NaN otherwise.
 */
function groupCpuUsPerMsg(out) {
  const pct = /^CPU\s+server ([\d.]+)% of one core/m.exec(out);
  const msgs = /^messages\s+(\d+) acked/m.exec(out);
  const dur = /, (\d+(?:\.\d+)?) s \(warm-up/.exec(out);
  if (!pct || !msgs || !dur) return NaN;
  const at = benchArgs.indexOf('--drain');
  const drainS = at >= 0 ? Number(benchArgs[at + 1]) : 5;
  return ((Number(pct[1]) / 100) * (Number(dur[1]) + drainS) * 1e6) / Number(msgs[1]);
}

function loadAvg() {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/** --same-bench: this checkout's bench/ over the commit tree's for one run; the returned function restores it. */
function overlayBench(tree) {
  if (!o['same-bench'] || tree.dir === ROOT) return () => {};
  cpSync(join(ROOT, 'bench'), join(tree.dir, 'bench'), { recursive: true, filter: (src) => !src.includes('node_modules') });
  return () => {
    spawnSync('git', ['-C', tree.dir, 'checkout', '--', 'bench'], { stdio: 'inherit' });
    spawnSync('git', ['-C', tree.dir, 'clean', '-fdq', '--', 'bench'], { stdio: 'inherit' });
  };
}

function benchRun(tree) {
  const scriptDir = o['script-from'] ? ROOT : tree.dir;
  const path = join(scriptDir, script);
  if (!existsSync(path)) throw new Error(`${script} does not exist in ${o['script-from'] ? 'this checkout' : tree.label}`);
  const runner = /\.m?js$/.test(script) ? [path] : ['--import', 'tsx', path];
  const env = { ...process.env, ...tree.env };
  if (o['script-from'] && tree.dir !== ROOT) env.MAGPIE_BENCH_SERVER_MAIN = join(tree.dir, 'packages/server/dist/main.js');
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [...runner, ...benchArgs], { cwd: scriptDir, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${tree.label}: bench exited with ${code}`))));
  });
}

const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

const trees = o.commits.split(',').map((s) => s.trim()).filter(Boolean).map(prepare);
const results = [];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < trees.length; i++) {
    const tree = trees[(i + r) % trees.length];
    const load = loadAvg();
    log(`round ${r + 1}/${rounds}: ${tree.label} (load ${f(load, 2)})`);
    const restore = overlayBench(tree);
    let out;
    try {
      out = await benchRun(tree);
    } finally {
      restore();
    }
    results.push({ round: r + 1, commit: tree.label, load, ...parseResult(out) });
    await sleep(Number(o.pause) * 1000);
  }
}

const connectBench = results.some((x) => Number.isFinite(x.connectUs));
const cols = connectBench
  ? [
      ['storm s', 'stormS', 2],
      ['µs/connect (storm)', 'connectUs', 0],
      ['µs/connect (+deferred)', 'connectAllUs', 0],
      ['µs/close', 'closeUs', 0],
    ]
  : [
      ['msg/s', 'msgPerS', 0],
      ['ACK p99 ms', 'ackP99', 1],
      ['e2e p99 ms', 'e2eP99', 1],
      ['server CPU %', 'cpuPct', 0],
      ['CPU µs/msg', 'cpuUsPerMsg', 0],
      ...(results.some((x) => Number.isFinite(x.loopUsPerMsg)) ? [['event loop µs/msg', 'loopUsPerMsg', 1]] : []),
      ...(results.some((x) => Number.isFinite(x.genUsPerMsg)) ? [['generator µs/msg', 'genUsPerMsg', 0]] : []),
      ...(results.some((x) => Number.isFinite(x.genLoopP99)) ? [['generator loop p99 ms', 'genLoopP99', 1]] : []),
    ];
const head = ['commit', 'round', 'load', ...cols.map((c) => c[0])];
const rows = results.map((x) => [x.commit, String(x.round), f(x.load, 2), ...cols.map(([, k, d]) => f(x[k], d))]);
const medians = trees.map((t) => {
  const mine = results.filter((x) => x.commit === t.label);
  const med = (k, d = 0) => f(median(mine.map((x) => x[k])), d);
  return [t.label, 'median', med('load', 2), ...cols.map(([, k, d]) => med(k, d))];
});
const all = [head, ...rows, ...medians];
const widths = head.map((_, c) => Math.max(...all.map((row) => row[c].length)));
const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
console.log('');
console.log(`=== ${script} ${benchArgs.join(' ')}: ${rounds} round(s), alternating${o['script-from'] ? ' (this checkout\'s bench script against each commit\'s server)' : ''} ===`);
console.log(line(head));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of [...rows, ...medians]) console.log(line(row));
if (o.json) writeFileSync(o.json, JSON.stringify({ script, args: benchArgs, rounds, results }, null, 2));
