import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';

/**
 * How the server process is launched comes from one place, packages/server/launch.json (node
 * flags; the malloc environment): `npm start` really runs the server with it (the process has
 * the environment and the flags, seen in V8's heap limit, and it is the very pid npm's shell
 * started: no launcher process in between), the Docker image carries the same values, and
 * every benchmark's server is launched with the launch.json next to the server it runs. The
 * shipped launch.json has no node flags (issue 23: the larger young generation measured, not
 * a gain on every load, docs/benchmarks.md); a copy of the package with
 * `--max-semi-space-size=64` in it shows the flags reach V8 both ways.
 */
const root = new URL('../../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const launch = JSON.parse(read('packages/server/launch.json')) as { nodeArgs: string[]; env: Record<string, string> };
const MiB = 2 ** 20;

/** The test runner's environment without its "magpie-source" condition (the compiled server loads compiled packages). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  env.NODE_OPTIONS = (env.NODE_OPTIONS ?? '').replace(/--conditions[= ]magpie-source/g, '').trim();
  for (const k of Object.keys(launch.env)) if (!(k in extra)) delete env[k];
  return env;
}

/** V8's heap limit of a plain node given `args` (it includes the young generation: 3 × the semi-space). */
function heapLimitOf(args: string[]): number {
  const r = spawnSync(process.execPath, [...args, '-p', 'require("v8").getHeapStatistics().heap_size_limit'], { env: cleanEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

/** Start a server process and read its JSON log lines until it listens and has said how its young generation is set. */
async function runUntilListening(proc: ChildProcess): Promise<{ listening: any; young: any }> {
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start in 60 s: ${err}`)), 60_000);
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
    proc.stdout!.on('data', (d) => {
      out += d;
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const listening = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Magpie listening'));
      const young = lines.find((l) => 'maxSemiSpaceSizeMiB' in l);
      if (listening && young) {
        clearTimeout(t);
        resolve({ listening, young });
      }
    });
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGINT');
  await exited;
}

const serverEnv = (dataDir: string) => ({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'info', MAGPIE_LOOP_WARMUP: '0' });

/** A copy of packages/server whose launch.json carries `nodeArgs` (dist/ linked to the real one). */
function packageWith(nodeArgs: string[]): { dir: string; main: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-launch-pkg-'));
  copyFileSync(join(root, 'packages/server/launch.mjs'), join(dir, 'launch.mjs'));
  writeFileSync(join(dir, 'launch.json'), JSON.stringify({ ...launch, nodeArgs }));
  symlinkSync(join(root, 'packages/server/dist'), join(dir, 'dist'), 'dir');
  return { dir, main: join(dir, 'dist/main.js'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('launch.json: node flags and the malloc settings', () => {
  assert.ok(Array.isArray(launch.nodeArgs) && launch.nodeArgs.every((x) => typeof x === 'string'));
  assert.deepEqual(launch.env, { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' });
  // --max-semi-space-size is a flag V8 takes from NODE_OPTIONS too (the Docker image's way, and an operator's), and it shows in the heap limit.
  const viaOptions = spawnSync(process.execPath, ['-p', 'require("v8").getHeapStatistics().heap_size_limit'], { env: { ...cleanEnv(), NODE_OPTIONS: '--max-semi-space-size=64' }, encoding: 'utf8' });
  assert.equal(viaOptions.status, 0, viaOptions.stderr);
  assert.equal(Number(viaOptions.stdout.trim()), heapLimitOf(['--max-semi-space-size=64']));
  assert.equal(heapLimitOf(['--max-semi-space-size=64']) - heapLimitOf(['--max-semi-space-size=16']), 3 * 48 * MiB, 'the young generation is 3 semi-spaces');
});

/** Run `npm start`'s script (from package.json) in a shell, for the package in `pkgDir`. */
function npmStart(pkgDir: string, dataDir: string): ChildProcess {
  const script = (JSON.parse(read('package.json')).scripts.start as string).replace('packages/server/launch.mjs', join(pkgDir, 'launch.mjs'));
  return spawn('sh', ['-c', script], { cwd: root, env: cleanEnv(serverEnv(dataDir)), stdio: ['ignore', 'pipe', 'pipe'] });
}

test('npm start runs the server itself (same pid) with launch.json: its node flags and the malloc environment', async () => {
  assert.match(JSON.parse(read('package.json')).scripts.start, /eval "\$\(node packages\/server\/launch\.mjs --sh \|\| echo exit 1\)"/);
  const flagged = packageWith(['--max-semi-space-size=64']);
  try {
    for (const [pkg, nodeArgs] of [[join(root, 'packages/server'), launch.nodeArgs], [flagged.dir, ['--max-semi-space-size=64']]] as const) {
      const dataDir = mkdtempSync(join(tmpdir(), 'magpie-launch-'));
      const proc = npmStart(pkg, dataDir);
      try {
        const { listening, young } = await runUntilListening(proc);
        assert.equal(listening.pid, proc.pid, 'the server is the process npm started (exec, no launcher in between)');
        const semi = /^--max-semi-space-size=(\d+)$/.exec(nodeArgs.find((x) => x.startsWith('--max-semi-space-size')) ?? '');
        assert.equal(young.maxSemiSpaceSizeMiB, semi ? Number(semi[1]) : 'default', pkg);
        assert.equal(young.heapSizeLimit, heapLimitOf([...nodeArgs]), `V8's heap limit is that of node ${nodeArgs.join(' ')}`);
        const environ = readFileSync(`/proc/${proc.pid}/environ`, 'utf8').split('\0');
        for (const [k, v] of Object.entries(launch.env)) assert.ok(environ.includes(`${k}=${v}`), `${k}=${v} in the server's environment`);
      } finally {
        await stop(proc);
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
    assert.ok(heapLimitOf(['--max-semi-space-size=64']) > heapLimitOf([]), 'the flag changes what V8 was given');
  } finally {
    flagged.cleanup();
  }
});

test('npm start fails (non-zero, the reason on stderr) when launch.json cannot be read, instead of exiting 0 without a server', async () => {
  const broken = packageWith([]);
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-launch-'));
  try {
    writeFileSync(join(broken.dir, 'launch.json'), '{ not json');
    const proc = npmStart(broken.dir, dataDir);
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    assert.equal(code, 1, 'npm start exits 1');
    assert.match(err, /JSON/, 'the parse error is printed');
  } finally {
    broken.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("npm start keeps an operator's own malloc setting", () => {
  const r = spawnSync(process.execPath, [join(root, 'packages/server/launch.mjs'), '--sh'], { env: cleanEnv({ MALLOC_ARENA_MAX: '4' }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!/MALLOC_ARENA_MAX=/.test(r.stdout), r.stdout);
  assert.match(r.stdout, /MALLOC_MMAP_THRESHOLD_='1048576'/);
  assert.match(r.stdout, /^exec '[^']*node[^']*' .*packages\/server\/dist\/main\.js'$/m);
});

test('a bare `node dist/main.js` says it runs with the default young generation', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-launch-'));
  const proc = spawn(process.execPath, [join(root, 'packages/server/dist/main.js')], { cwd: root, env: cleanEnv(serverEnv(dataDir)), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const { young } = await runUntilListening(proc);
    assert.equal(young.maxSemiSpaceSizeMiB, 'default');
    assert.equal(young.heapSizeLimit, heapLimitOf([]));
    assert.match(young.msg, /--max-semi-space-size/);
  } finally {
    await stop(proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("the Docker image's ENV carries launch.json; compose and Kubernetes run the image's command without overriding it", () => {
  const df = DockerfileParser.parse(read('Dockerfile'));
  const runtime = df.getInstructions().slice(df.getInstructions().indexOf(df.getFROMs()[1]!));
  const env = new Map<string, string>();
  for (const i of runtime.filter((x) => x.getKeyword() === 'ENV') as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }[]) {
    for (const p of i.getProperties()) env.set(p.getName(), p.getValue() ?? '');
  }
  assert.equal(env.get('NODE_OPTIONS') ?? '', launch.nodeArgs.join(' '));
  for (const [k, v] of Object.entries(launch.env)) assert.equal(env.get(k), v, k);
  const cmd = runtime.find((x) => x.getKeyword() === 'CMD')!.getArgumentsContent()!;
  assert.match(cmd, /"node", "packages\/server\/dist\/main\.js"/);

  const compose = parseYaml(read('deploy/compose/docker-compose.yml'), { merge: true }) as { services: Record<string, any> };
  const k8s = parseAllDocuments(read('deploy/k8s/deployment.yaml')).map((d) => d.toJS() as any);
  const containers = [
    ...Object.values(compose.services).filter((s: any) => /^magpie/.test(String(s.image ?? ''))),
    ...k8s.flatMap((d) => d?.spec?.template?.spec?.containers ?? []).filter((c: any) => /^magpie/.test(String(c.image ?? ''))),
  ];
  assert.ok(containers.length >= 2, `found the Magpie containers (${containers.length})`);
  for (const c of containers) {
    assert.equal(c.command, undefined, 'no command override');
    assert.equal(c.entrypoint, undefined, 'no entrypoint override');
    const names = Array.isArray(c.environment) ? c.environment.map((e: string) => e.split('=')[0]) : Object.keys(c.environment ?? {});
    for (const e of c.env ?? []) names.push(e.name);
    for (const k of ['NODE_OPTIONS', ...Object.keys(launch.env)]) assert.ok(!names.includes(k), `${k} not overridden`);
  }
});

test("every benchmark launches its server with the launch.json next to it (bench/lib/server.ts); a flag there reaches the server's V8", async () => {
  const dir = join(root, 'bench');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|mjs)$/.test(f) && f !== join('lib', 'server.ts'));
  const forking = files.filter((f) => /(?<!MAGPIE_BENCH_)\bSERVER_MAIN\b/.test(readFileSync(join(dir, f), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '')));
  assert.ok(forking.length >= 6, `benches that fork the server: ${forking.join(', ')}`);
  for (const f of forking) assert.match(readFileSync(join(dir, f), 'utf8'), /serverExecArgv\(/, `${f} forks the server with serverExecArgv()`);
  // bench/lib/server.ts reads the launch.json of the server it runs (MAGPIE_BENCH_SERVER_MAIN, as bench/alternate.mjs sets it).
  const flagged = packageWith(['--max-semi-space-size=64']);
  const saved = process.env.MAGPIE_BENCH_SERVER_MAIN;
  process.env.MAGPIE_BENCH_SERVER_MAIN = flagged.main;
  try {
    const { startServer, serverLaunch, serverExecArgv } = await import('../../../bench/lib/server.ts');
    assert.deepEqual(serverLaunch().nodeArgs, ['--max-semi-space-size=64']);
    assert.deepEqual(serverExecArgv(['--x']), ['--max-semi-space-size=64', ...(process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean), '--x']);
    const s = await startServer();
    try {
      assert.equal(s.maxSemiSpaceSizeMiB, 64);
      assert.equal(s.heapSizeLimit, heapLimitOf(['--max-semi-space-size=64']));
    } finally {
      await s.stop();
    }
  } finally {
    if (saved === undefined) delete process.env.MAGPIE_BENCH_SERVER_MAIN;
    else process.env.MAGPIE_BENCH_SERVER_MAIN = saved;
    flagged.cleanup();
  }
});
