import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DockerfileParser } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service, ConfigMap, Secret } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { opsRoutes } from '@magpie/protocol';
import { CONFIG_ENV_NAMES, loadConfig } from '../src/config/config.ts';

/**
 * The shipping files, checked offline (no Docker daemon or cluster here): the license, the
 * Dockerfile's stages and runtime user, the compose file and HAProxy config, and the
 * Kubernetes manifests validated against the Kubernetes schemas (kubernetes-models) and
 * against Magpie's own configuration and health routes.
 */
const root = new URL('../../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const yamlDocs = (p: string) => parseAllDocuments(read(p)).map((d) => d.toJS() as Record<string, any>);

test('LICENSE is Apache-2.0 and every package.json says so', () => {
  const text = read('LICENSE');
  assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(text, /END OF TERMS AND CONDITIONS/);
  for (const p of ['package.json', ...readdirSync(join(root, 'packages')).map((d) => `packages/${d}/package.json`)]) {
    assert.equal(JSON.parse(read(p)).license, 'Apache-2.0', p);
  }
});

test('Dockerfile: a build stage and a runtime stage that runs the compiled server as a non-root user with a health check', () => {
  const df = DockerfileParser.parse(read('Dockerfile'));
  const froms = df.getFROMs();
  assert.ok(froms.length >= 2, 'multi-stage');
  assert.deepEqual(froms.map((f) => f.getBuildStage()), ['build', 'runtime']);
  const all = df.getInstructions();
  const runtimeStart = all.indexOf(froms[1]!);
  const runtime = all.slice(runtimeStart);
  const kw = (k: string) => runtime.filter((i) => i.getKeyword() === k);
  const user = kw('USER').at(-1)?.getArgumentsContent();
  assert.ok(user && user !== 'root' && user !== '0', `runtime user: ${user}`);
  const health = kw('HEALTHCHECK')[0]?.getArgumentsContent() ?? '';
  assert.match(health, new RegExp(opsRoutes.live.url.replace(/\//g, '\\/')));
  assert.match(kw('CMD')[0]!.getArgumentsContent()!, /packages\/server\/dist\/main\.js/);
  assert.equal(kw('STOPSIGNAL')[0]?.getArgumentsContent(), 'SIGTERM');
  // The build stage compiles (npm run build) and the runtime copies only built output from it.
  assert.ok(all.slice(0, runtimeStart).some((i) => i.getKeyword() === 'RUN' && /npm run build/.test(i.getArgumentsContent() ?? '')));
  for (const c of kw('COPY') as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }[]) {
    assert.equal(c.getFlags().find((f) => f.getName() === 'from')?.getValue(), 'build', 'runtime copies from the build stage only');
  }
  // Files the build stage copies from the context exist and are not excluded by .dockerignore.
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const c of all.slice(0, runtimeStart).filter((i) => i.getKeyword() === 'COPY')) {
    const args = c.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'));
    for (const src of args.slice(0, -1)) {
      assert.ok(existsSync(join(root, src)), `COPY source ${src} exists`);
      assert.ok(!ignored.includes(src) && !ignored.includes(src.split('/')[0]!), `COPY source ${src} not in .dockerignore`);
    }
  }
  assert.ok(ignored.includes('**/node_modules') && ignored.includes('.git'), '.dockerignore keeps node_modules and .git out');
});

test('compose: PostgreSQL, NATS and two Magpie nodes behind HAProxy, health from /api/ready', () => {
  // Compose files use YAML merge keys (<<:) for the shared node settings.
  const c = parseYaml(read('deploy/compose/docker-compose.yml'), { merge: true }) as { services: Record<string, any> };
  assert.deepEqual(Object.keys(c.services).sort(), ['magpie1', 'magpie2', 'nats', 'postgres', 'proxy']);
  for (const n of ['magpie1', 'magpie2']) {
    const env = c.services[n].environment as Record<string, string>;
    assert.match(env.MAGPIE_STORE!, /^postgres:\/\/.*@postgres:5432\//);
    assert.equal(env.MAGPIE_NATS, 'nats://nats:4222');
    assert.equal(env.MAGPIE_NODE_ID, n);
    for (const k of Object.keys(env)) assert.ok(CONFIG_ENV_NAMES.includes(k), `${n}: ${k} is a known setting`);
    // The values form a valid configuration.
    loadConfig(env);
    assert.equal(c.services[n].build.dockerfile, 'Dockerfile');
  }
  const cfg = read('deploy/compose/haproxy.cfg');
  assert.match(cfg, new RegExp(`option httpchk GET ${opsRoutes.ready.url}`));
  for (const n of ['magpie1', 'magpie2']) assert.match(cfg, new RegExp(`server ${n} ${n}:8080 check`));
  assert.match(c.services.proxy.volumes[0], /haproxy\.cfg/);
});

test('Kubernetes manifests validate against the Kubernetes schemas and fit Magpie', () => {
  const kust = parseYaml(read('deploy/k8s/kustomization.yaml')) as { resources: string[] };
  const files = readdirSync(join(root, 'deploy/k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...kust.resources].sort(), files.sort(), 'kustomization lists every manifest');
  const docs = files.flatMap((f) => yamlDocs(`deploy/k8s/${f}`));
  const byKind = new Map(docs.map((d) => [d.kind as string, d]));
  const models = { Deployment, Service, ConfigMap, Secret, PodDisruptionBudget, HorizontalPodAutoscaler } as const;
  for (const [kind, Model] of Object.entries(models)) {
    const d = byKind.get(kind);
    assert.ok(d, `${kind} present`);
    new (Model as unknown as new (d: unknown) => { validate(): void })(d).validate();
  }
  const dep = byKind.get('Deployment')!;
  const labels = dep.spec.template.metadata.labels;
  assert.deepEqual(dep.spec.selector.matchLabels, labels);
  assert.deepEqual(byKind.get('Service')!.spec.selector, labels);
  assert.deepEqual(byKind.get('PodDisruptionBudget')!.spec.selector.matchLabels, labels);
  assert.equal(byKind.get('HorizontalPodAutoscaler')!.spec.scaleTargetRef.name, dep.metadata.name);
  const ctr = dep.spec.template.spec.containers[0];
  assert.equal(ctr.livenessProbe.httpGet.path, opsRoutes.live.url);
  assert.equal(ctr.readinessProbe.httpGet.path, opsRoutes.ready.url);
  assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
  // ConfigMap + Secret form a valid configuration of known settings.
  const env = { ...byKind.get('ConfigMap')!.data, ...byKind.get('Secret')!.stringData } as Record<string, string>;
  for (const k of Object.keys(env)) assert.ok(CONFIG_ENV_NAMES.includes(k), `${k} is a known setting`);
  const config = loadConfig(env);
  // The grace period covers the drain with a margin.
  assert.ok(dep.spec.template.spec.terminationGracePeriodSeconds * 1000 >= config.drain.delayMs + config.drain.timeoutMs + 10_000, 'terminationGracePeriodSeconds covers the drain');
});

test('kubectl kustomize renders the manifests (when kubectl is installed)', (t) => {
  const r = spawnSync('kubectl', ['kustomize', join(root, 'deploy/k8s')], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    t.skip('kubectl not installed');
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.equal(parseAllDocuments(r.stdout).length, 6);
});
