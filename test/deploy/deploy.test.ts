// The deployment files of deploy/ hold together without a container engine: every YAML file parses, the
// compose stack and the Kubernetes manifests name each other's pieces, both icalpush configs pass the real
// `icalpush check`, and the compose nginx.conf passes `nginx -t` where nginx is installed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { type TestContext, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';
import { run, tempConfig } from '../helpers/cli.ts';
import { closedPort } from '../helpers/servers.ts';
import { assertNginxConfigValid, nginxBinary, writeNginxConfig } from '../helpers/nginx.ts';

const root = resolve(import.meta.dirname, '../..');
const deployDir = resolve(root, 'deploy');
const composeDir = resolve(deployDir, 'compose');
const kubernetesDir = resolve(deployDir, 'kubernetes');
const snippetPath = resolve(root, 'config/nginx/icalpush-locations.conf');
const env = { ICALPUSH_ADMIN_TOKEN: 'deploy-test-token' };

const nginx = nginxBinary;

// The shapes read here: only the fields the assertions touch.
type Labels = Record<string, string>;
type ComposeService = {
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
};
type Compose = { services: Record<string, ComposeService> };
type Probe = { httpGet?: { path: string; port: number | string } };
type Container = {
  name: string;
  ports: Array<{ name?: string; containerPort: number }>;
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; runAsUser?: number };
};
type PodSpec = {
  containers: Container[];
  volumes: Array<{ name: string; configMap?: { name: string } }>;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  topologySpreadConstraints?: Array<{ labelSelector: { matchLabels: Labels } }>;
  affinity?: { podAntiAffinity?: unknown };
};
type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
  spec?: {
    replicas?: number;
    selector?: Labels & { matchLabels?: Labels };
    template?: { metadata: { labels: Labels }; spec: PodSpec };
    ports?: Array<{ port: number; targetPort: number | string }>;
    minAvailable?: number;
  };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  resources?: string[];
};

/** Every YAML file under deploy/, relative to it, sorted. */
async function yamlFiles(): Promise<string[]> {
  const entries = await readdir(deployDir, { recursive: true });
  return entries.filter((file) => /\.ya?ml$/.test(file)).sort();
}

/** The documents of one YAML file as plain data; any YAML error fails the calling test. */
async function readYaml(path: string): Promise<unknown[]> {
  const docs = parseAllDocuments(await readFile(path, 'utf8'), { merge: true, prettyErrors: true });
  assert.ok(Array.isArray(docs), `${relative(root, path)}: no YAML documents`);
  for (const doc of docs) {
    assert.deepEqual(doc.errors.map(String), [], `${relative(root, path)}: YAML errors`);
    assert.deepEqual(doc.warnings.map(String), [], `${relative(root, path)}: YAML warnings`);
  }
  return docs.map((doc) => doc.toJS({ maxAliasCount: 100 }) as unknown);
}

async function readCompose(): Promise<Compose> {
  const [compose] = await readYaml(resolve(composeDir, 'compose.yaml'));
  return compose as Compose;
}

async function readManifests(): Promise<Manifest[]> {
  const files = (await readdir(kubernetesDir)).filter((file) => file.endsWith('.yaml'));
  const docs = await Promise.all(files.map((file) => readYaml(resolve(kubernetesDir, file))));
  return docs.flat().filter((doc) => doc !== null) as Manifest[];
}

function only(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name === undefined ? '' : ` ${name}`}`);
  return found[0]!;
}

function podSpec(deployment: Manifest): PodSpec {
  const spec = deployment.spec?.template?.spec;
  assert.ok(spec, `${deployment.metadata.name} has a pod template`);
  return spec;
}

function icalpushContainer(deployment: Manifest): Container {
  const container = podSpec(deployment).containers.find((c) => c.name === 'icalpush');
  assert.ok(container, 'the Deployment has an icalpush container');
  return container;
}

/** The container port a probe or Service names (by number or by name). */
function containerPort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return container.ports.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports.find((p) => p.name === port)?.containerPort;
}

/** Whether every label of `selector` is on `labels`. */
function selects(selector: Labels | undefined, labels: Labels): boolean {
  return selector !== undefined && Object.keys(selector).length > 0
    && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** A compose volume `source:target[:mode]`, its source resolved against compose.yaml's directory. */
function volume(spec: string): { source: string; target: string; readOnly: boolean } {
  const [source = '', target = '', mode] = spec.split(':');
  return { source: resolve(composeDir, source), target, readOnly: mode === 'ro' };
}

/** The `upstream name { server …; }` blocks of an nginx config: name → its server addresses. */
function upstreams(conf: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const [, name = '', body = ''] of conf.matchAll(/^\s*upstream\s+(\S+)\s*\{([^}]*)\}/gm)) {
    found.set(name, [...body.matchAll(/^\s*server\s+([^\s;]+)/gm)].map(([, address = '']) => address));
  }
  return found;
}

/** The icalpush config the ConfigMap carries as proxy.yaml. */
async function configMapText(): Promise<string> {
  const text = only(await readManifests(), 'ConfigMap').data?.['proxy.yaml'];
  assert.ok(text, 'the ConfigMap has a proxy.yaml key');
  return text;
}

/** The icalpush config both compose replicas mount. */
async function composeText(): Promise<string> {
  return readFile(resolve(composeDir, 'proxy.yaml'), 'utf8');
}

/** A config as icalpush loads it, with the admin token in the environment. */
function load(text: string, sourceName: string) {
  const result = parseConfigText(text, { env, sourceName, baseDir: tmpdir() });
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.problems, null, 2));
  return result.config;
}

/** The port of a `host:port` listen address. */
function listenPort(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

test('every YAML file under deploy/ parses', async () => {
  const files = await yamlFiles();
  for (const expected of ['compose/compose.yaml', 'compose/proxy.yaml', 'kubernetes/kustomization.yaml']) {
    assert.ok(files.includes(expected), `deploy/${expected} exists`);
  }
  for (const file of files) await readYaml(resolve(deployDir, file));
});

test('compose runs redis, two icalpush replicas built from the Dockerfile, the platform and nginx', async () => {
  const { services } = await readCompose();
  assert.deepEqual(Object.keys(services).sort(), ['icalpush-1', 'icalpush-2', 'nginx', 'platform', 'redis']);
  assert.equal(services.redis?.image, 'redis:7-alpine');
  assert.deepEqual(services.redis?.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
  assert.equal(services.nginx?.image, 'nginx:1.27-alpine');
  assert.deepEqual(services.nginx?.ports, ['8080:80']);
  for (const name of ['icalpush-1', 'icalpush-2']) {
    const replica = services[name];
    assert.ok(replica?.build, `${name} is built`);
    assert.ok(existsSync(resolve(composeDir, replica.build.context, replica.build.dockerfile ?? 'Dockerfile')),
      `${name} builds the repo's Dockerfile`);
    assert.equal(resolve(composeDir, replica.build.context), root);
    assert.equal(replica.depends_on?.redis?.condition, 'service_healthy', `${name} waits for a healthy redis`);
    assert.match(replica.healthcheck?.test.join(' ') ?? '', /127\.0\.0\.1:8080\/_icalpush\/healthz/);
  }
});

test('compose takes the admin token from the environment, with no default in the file', async () => {
  const { services } = await readCompose();
  for (const name of ['icalpush-1', 'icalpush-2']) {
    const token = services[name]?.environment?.ICALPUSH_ADMIN_TOKEN ?? '';
    // ${VAR} or ${VAR:?message}: never ${VAR:-secret} nor a literal.
    assert.match(token, /^\$\{ICALPUSH_ADMIN_TOKEN(:?\?[^}]*)?\}$/, name);
  }
});

test('both compose replicas mount the same proxy.yaml read-only at ICALPUSH_CONFIG', async () => {
  const { services } = await readCompose();
  const mounts = ['icalpush-1', 'icalpush-2'].map((name) => {
    const replica = services[name];
    const config = replica?.environment?.ICALPUSH_CONFIG;
    assert.equal(config, '/config/proxy.yaml', name);
    const mount = (replica?.volumes ?? []).map(volume).find((v) => v.target === config);
    assert.ok(mount, `${name} mounts its config`);
    assert.ok(mount.readOnly, `${name} mounts its config read-only`);
    return mount.source;
  });
  assert.deepEqual(mounts, [resolve(composeDir, 'proxy.yaml'), resolve(composeDir, 'proxy.yaml')]);
});

test('compose nginx mounts the repo\'s location snippet where nginx.conf includes it', async () => {
  const { services } = await readCompose();
  const mounts = (services.nginx?.volumes ?? []).map(volume);
  const snippet = mounts.find((v) => v.source === snippetPath);
  assert.ok(snippet, 'nginx mounts config/nginx/icalpush-locations.conf');
  assert.ok(existsSync(snippet.source));
  const site = mounts.find((v) => v.source === resolve(composeDir, 'nginx.conf'));
  assert.ok(site, 'nginx mounts deploy/compose/nginx.conf');
  assert.match(site.target, /^\/etc\/nginx\/conf\.d\/[^/]+\.conf$/, 'nginx.conf is read inside the image\'s http block');
  const conf = await readFile(site.source, 'utf8');
  assert.deepEqual([...conf.matchAll(/^\s*include\s+([^;]+);/gm)].map(([, path]) => path), [snippet.target]);
});

test('compose nginx.conf round-robins over both replicas and defines the platform upstream', async () => {
  const conf = await readFile(resolve(composeDir, 'nginx.conf'), 'utf8');
  const config = load(await composeText(), 'compose proxy.yaml');
  const port = listenPort(config.listen);
  const found = upstreams(conf);
  assert.deepEqual(found.get('icalpush'), [`icalpush-1:${port}`, `icalpush-2:${port}`]);
  // The platform nginx forwards to is the one the replicas pass through to.
  assert.deepEqual(found.get('platform'), [new URL(config.upstream).host]);
  assert.match(conf, /location \/ \{[^}]*proxy_pass http:\/\/platform;/);
  const { services } = await readCompose();
  assert.ok(services[new URL(config.upstream).hostname], 'the upstream is a compose service');
  assert.ok(services[new URL(config.store).hostname], 'the store URL names a compose service');
});

test('the location snippet routes the feeds and triggers proxy.yaml declares', async () => {
  const snippet = await readFile(snippetPath, 'utf8');
  const locations = [...snippet.matchAll(/^location ~ (\S+) \{/gm)].map(([, regex = '']) => new RegExp(regex));
  for (const [name, text] of [['compose', await composeText()], ['ConfigMap', await configMapText()]] as const) {
    const config = load(text, name);
    const examples = [
      ...config.feeds.map((f) => f.path),
      ...config.push.triggers.map((t) => t.path),
    ].map((pattern) => pattern.replaceAll('{listing}', 'beach-house').replaceAll('**', 'new').replaceAll('*', 'x'));
    assert.ok(examples.length >= 2);
    for (const example of examples) {
      assert.ok(locations.some((regex) => regex.test(example)), `${name}: ${example} reaches icalpush through the snippet`);
    }
  }
});

test('the compose proxy.yaml passes icalpush check with a shared Redis store', async (t) => {
  const path = await tempConfig(t, await composeText());
  const { code, stdout, stderr } = await run(['check', '--config', path], env);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /store\s+redis:\/\/redis:6379\/0 \(redis: shared by every replica\)/);
  assert.match(stdout, /admin\s+token set/);
});

test('the compose proxy.yaml refuses to load without ICALPUSH_ADMIN_TOKEN', async (t) => {
  const path = await tempConfig(t, await composeText());
  const { code, stderr } = await run(['check', '--config', path]);
  assert.equal(code, 1);
  assert.match(stderr, /ICALPUSH_ADMIN_TOKEN is not set/);
});

test('kustomization lists every manifest in deploy/kubernetes', async () => {
  const [kustomization] = await readYaml(resolve(kubernetesDir, 'kustomization.yaml')) as Manifest[];
  const manifests = (await readdir(kubernetesDir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...(kustomization?.resources ?? [])].sort(), manifests.sort());
});

test('the Deployment runs at least two replicas probed on the container port', async () => {
  const deployment = only(await readManifests(), 'Deployment', 'icalpush');
  assert.ok((deployment.spec?.replicas ?? 1) >= 2, 'replicas >= 2');
  const container = icalpushContainer(deployment);
  const readiness = container.readinessProbe?.httpGet;
  const liveness = container.livenessProbe?.httpGet;
  assert.equal(readiness?.path, '/_icalpush/readyz');
  assert.equal(liveness?.path, '/_icalpush/healthz');
  const port = listenPort(load(await configMapText(), 'ConfigMap').listen);
  assert.equal(containerPort(container, readiness.port), port, 'readiness probes the port icalpush listens on');
  assert.equal(containerPort(container, liveness.port), port, 'liveness probes the port icalpush listens on');
});

test('the Service and the PodDisruptionBudget select the Deployment\'s pods', async () => {
  const manifests = await readManifests();
  const deployment = only(manifests, 'Deployment', 'icalpush');
  const labels = deployment.spec?.template?.metadata.labels ?? {};
  assert.ok(selects(deployment.spec?.selector?.matchLabels, labels), 'the Deployment selects its own pods');
  const service = only(manifests, 'Service', 'icalpush');
  assert.ok(selects(service.spec?.selector, labels), 'the Service selects the pods');
  const [port] = service.spec?.ports ?? [];
  assert.equal(port?.port, 80);
  assert.equal(containerPort(icalpushContainer(deployment), port.targetPort), 8080);
  const pdb = only(manifests, 'PodDisruptionBudget');
  assert.equal(pdb.spec?.minAvailable, 1);
  assert.ok(selects(pdb.spec?.selector?.matchLabels, labels), 'the PDB selects the pods');
  const spread = podSpec(deployment).topologySpreadConstraints ?? [];
  assert.ok(spread.some((c) => selects(c.labelSelector.matchLabels, labels))
    || podSpec(deployment).affinity?.podAntiAffinity !== undefined, 'replicas prefer different nodes');
});

test('the Deployment mounts the ConfigMap at ICALPUSH_CONFIG and reads the token from the Secret', async () => {
  const manifests = await readManifests();
  const deployment = only(manifests, 'Deployment', 'icalpush');
  const container = icalpushContainer(deployment);
  const envOf = (name: string) => container.env.find((e) => e.name === name);
  assert.equal(envOf('ICALPUSH_CONFIG')?.value, '/config/proxy.yaml');
  const configMap = only(manifests, 'ConfigMap');
  assert.ok(configMap.data?.['proxy.yaml'], 'the ConfigMap has proxy.yaml');
  const volume = podSpec(deployment).volumes.find((v) => v.configMap?.name === configMap.metadata.name);
  assert.ok(volume, 'a volume is the ConfigMap');
  const mount = container.volumeMounts.find((m) => m.name === volume.name);
  assert.equal(mount?.mountPath, '/config');
  const ref = envOf('ICALPUSH_ADMIN_TOKEN')?.valueFrom?.secretKeyRef;
  assert.ok(ref, 'ICALPUSH_ADMIN_TOKEN comes from a Secret');
  const secret = only(manifests, 'Secret', ref.name);
  assert.ok(secret.stringData?.[ref.key] ?? secret.data?.[ref.key], `the Secret has key ${ref.key}`);
});

test('the Deployment outlasts the shutdown timeout, runs non-root and bounds its resources', async () => {
  const deployment = only(await readManifests(), 'Deployment', 'icalpush');
  const pod = podSpec(deployment);
  const container = icalpushContainer(deployment);
  const config = load(await configMapText(), 'ConfigMap');
  const [command, seconds] = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStopMs = command === 'sleep' ? Number(seconds) * 1000 : 0;
  assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 > preStopMs + config.timeouts.shutdown,
    'SIGKILL comes only after preStop and the shutdown timeout');
  assert.equal(pod.securityContext?.runAsNonRoot ?? container.securityContext?.runAsNonRoot, true);
  // A numeric non-root uid: the image's user is `node` (1000), which the kubelet cannot verify by name.
  assert.equal(pod.securityContext?.runAsUser ?? container.securityContext?.runAsUser, 1000);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  for (const key of ['cpu', 'memory']) {
    assert.ok(container.resources?.requests?.[key], `requests.${key}`);
    assert.ok(container.resources?.limits?.[key], `limits.${key}`);
  }
});

test('the Kubernetes redis Service is the one the ConfigMap\'s store names', async () => {
  const manifests = await readManifests();
  const config = load(await configMapText(), 'ConfigMap');
  const store = new URL(config.store);
  const service = only(manifests, 'Service', store.hostname);
  assert.ok(service.spec?.ports?.some((p) => p.port === Number(store.port || 6379)), 'the Service has the store port');
  const redis = only(manifests, 'Deployment', store.hostname);
  assert.ok(selects(service.spec?.selector, redis.spec?.template?.metadata.labels ?? {}), 'it selects the redis pod');
});

test('the ConfigMap\'s proxy.yaml passes icalpush check with a shared Redis store', async (t) => {
  const path = await tempConfig(t, await configMapText());
  const { code, stdout, stderr } = await run(['check', '--config', path], env);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /listen\s+0\.0\.0\.0:8080/);
  assert.match(stdout, /store\s+redis:\/\/redis:6379\/0 \(redis: shared by every replica\)/);
  assert.match(stdout, /admin\s+token set/);
});

test('nginx accepts the compose nginx.conf with the snippet included', {
  skip: nginx ? false : 'nginx not installed',
}, async (t) => {
  const dir = await nginxDir(t);
  // The compose names do not resolve here: every upstream server becomes a (closed) local port.
  let site = await readFile(resolve(composeDir, 'nginx.conf'), 'utf8');
  for (const address of [...upstreams(site).values()].flat()) {
    site = site.replace(`server ${address};`, `server 127.0.0.1:${await closedPort()};`);
  }
  site = site
    .replace(/^(\s*)listen\s+80;/m, `$1listen 127.0.0.1:${await closedPort()};`)
    .replace(/^(\s*)include\s+\/etc\/nginx\/icalpush-locations\.conf;/m, `$1include ${snippetPath};`);
  assert.doesNotMatch(site.replace(/#.*$/gm, ''), /icalpush-\d:|platform:\d|listen\s+80;|\/etc\/nginx/,
    'every container name and path was replaced');
  await nginxTest(dir, site);
});

test('nginx accepts the placeholder platform.conf', {
  skip: nginx ? false : 'nginx not installed',
}, async (t) => {
  const dir = await nginxDir(t);
  const site = (await readFile(resolve(composeDir, 'platform.conf'), 'utf8'))
    .replace(/^(\s*)listen\s+9000;/m, `$1listen 127.0.0.1:${await closedPort()};`);
  assert.doesNotMatch(site, /listen\s+9000;/);
  await nginxTest(dir, site);
});

async function nginxDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-deploy-nginx-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `nginx -t` on `site` inside a main config whose every path is under `dir` (runs as non-root too). */
async function nginxTest(dir: string, site: string): Promise<void> {
  await writeFile(join(dir, 'site.conf'), site);
  await writeNginxConfig(dir, `  include ${dir}/site.conf;`);
  assertNginxConfigValid(dir);
}
