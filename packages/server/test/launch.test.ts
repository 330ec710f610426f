import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { startServer } from '../../../bench/lib/server.ts';

/**
 * How the server process is launched comes from one place, packages/server/launch.json
 * (node flags: the larger young generation; malloc environment): `npm start` really runs the
 * server with it (V8's heap limit grows by the young generation's size, the process has the
 * environment, and it is the very pid npm's shell started: no launcher process in between),
 * the Docker image carries the same values, and every benchmark's server is launched with it.
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

test('launch.json: the larger young generation and the malloc settings', () => {
  assert.deepEqual(launch.nodeArgs, ['--max-semi-space-size=64']);
  assert.deepEqual(launch.env, { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' });
  // The flag is one V8 takes from NODE_OPTIONS too (the Docker image's way), and it shows in the heap limit.
  const viaOptions = spawnSync(process.execPath, ['-p', 'require("v8").getHeapStatistics().heap_size_limit'], { env: { ...cleanEnv(), NODE_OPTIONS: launch.nodeArgs.join(' ') }, encoding: 'utf8' });
  assert.equal(viaOptions.status, 0, viaOptions.stderr);
  assert.equal(Number(viaOptions.stdout.trim()), heapLimitOf(launch.nodeArgs));
  assert.equal(heapLimitOf(launch.nodeArgs) - heapLimitOf(['--max-semi-space-size=16']), 3 * 48 * MiB, 'the young generation is 3 semi-spaces');
});

test('npm start runs the server itself (same pid) with launch.json: 64 MiB semi-spaces and the malloc environment', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-launch-'));
  const script = JSON.parse(read('package.json')).scripts.start as string;
  assert.match(script, /packages\/server\/launch\.mjs/);
  const proc = spawn('sh', ['-c', script], { cwd: root, env: cleanEnv(serverEnv(dataDir)), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const { listening, young } = await runUntilListening(proc);
    assert.equal(listening.pid, proc.pid, 'the server is the process npm started (exec, no launcher in between)');
    assert.equal(young.maxSemiSpaceSizeMiB, 64);
    assert.equal(young.heapSizeLimit, heapLimitOf(launch.nodeArgs), "V8's heap limit is that of --max-semi-space-size=64");
    assert.ok(young.heapSizeLimit > heapLimitOf([]), 'larger than node without the flag');
    const environ = readFileSync(`/proc/${proc.pid}/environ`, 'utf8').split('\0');
    for (const [k, v] of Object.entries(launch.env)) assert.ok(environ.includes(`${k}=${v}`), `${k}=${v} in the server's environment`);
  } finally {
    await stop(proc);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("npm start keeps an operator's own malloc setting", () => {
  const r = spawnSync(process.execPath, [join(root, 'packages/server/launch.mjs'), '--sh'], { env: cleanEnv({ MALLOC_ARENA_MAX: '4' }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!/MALLOC_ARENA_MAX=/.test(r.stdout), r.stdout);
  assert.match(r.stdout, /MALLOC_MMAP_THRESHOLD_='1048576'/);
  assert.match(r.stdout, /^exec .*'--max-semi-space-size=64' .*packages\/server\/dist\/main\.js'$/m);
});

test('a bare `node dist/main.js` says it runs with the default young generation', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-launch-'));
  const proc = spawn(process.execPath, [join(root, 'packages/server/dist/main.js')], { cwd: root, env: cleanEnv(serverEnv(dataDir)), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const { young } = await runUntilListening(proc);
    assert.equal(young.maxSemiSpaceSizeMiB, 'default');
    assert.equal(young.heapSizeLimit, heapLimitOf([]));
    assert.match(young.msg, /--max-semi-space-size=64/);
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
  assert.equal(env.get('NODE_OPTIONS'), launch.nodeArgs.join(' '));
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

test('every benchmark launches its server with launch.json (bench/lib/server.ts), and that server reports 64 MiB semi-spaces', async () => {
  const dir = join(root, 'bench');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|mjs)$/.test(f) && f !== join('lib', 'server.ts'));
  const forking = files.filter((f) => /(?<!MAGPIE_BENCH_)\bSERVER_MAIN\b/.test(readFileSync(join(dir, f), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '')));
  assert.ok(forking.length >= 6, `benches that fork the server: ${forking.join(', ')}`);
  for (const f of forking) assert.match(readFileSync(join(dir, f), 'utf8'), /serverExecArgv\(/, `${f} forks the server with serverExecArgv()`);
  const s = await startServer();
  try {
    assert.equal(s.maxSemiSpaceSizeMiB, 64);
    assert.equal(s.heapSizeLimit, heapLimitOf(launch.nodeArgs));
  } finally {
    await s.stop();
  }
});
