// The command line as an operator runs it: real processes, real exit codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import pkg from '../../package.json' with { type: 'json' };
import { startApp } from '../helpers/app.ts';
import { run, tempConfig } from '../helpers/cli.ts';
import { closedPort, startServer } from '../helpers/servers.ts';

test('--version prints the package version', async () => {
  const { code, stdout } = await run(['--version']);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), pkg.version);
});

for (const command of ['serve', 'check']) {
  test(`${command} --help describes --config and its default`, async () => {
    const { code, stdout } = await run([command, '--help']);
    assert.equal(code, 0);
    assert.match(stdout, /--config <file>/);
    assert.match(stdout, /ICALPUSH_CONFIG/);
  });
}

test('check prints a summary of a valid config and exits 0', async () => {
  const { code, stdout } = await run(['check', '--config', 'proxy.example.yaml']);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /beach-house/);
  assert.match(stdout, /127\.0\.0\.1:9000/);
});

test('check lists every problem and exits 1', async (t) => {
  const path = await tempConfig(
    t,
    'upstream: ftp://x\nfeeds:\n  - path: /no-listing.ics\nbogus: 1\n',
  );
  const { code, stderr } = await run(['check', '--config', path]);
  assert.equal(code, 1);
  assert.match(stderr, /upstream: .*line 1/);
  assert.match(stderr, /feeds\[0\]\.path: .*\{listing\}.*line 3/);
  assert.match(stderr, /bogus: unknown key.*line 4/);
});

test('--config defaults to $ICALPUSH_CONFIG', async (t) => {
  const path = await tempConfig(
    t,
    'upstream: http://127.0.0.1:9\nfeeds:\n  - path: /c/{listing}.ics\n',
  );
  const { code, stdout } = await run(['check'], { ICALPUSH_CONFIG: path });
  assert.equal(code, 0);
  assert.match(stdout, /\/c\/\{listing\}\.ics/);
});

test('serve with an invalid config exits non-zero before listening', async (t) => {
  const path = await tempConfig(
    t,
    'listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\nfeeds: []\npush:\n  debounce: soon\n',
  );
  const { code, stdout, stderr } = await run(['serve', '--config', path]);
  assert.equal(code, 1);
  assert.doesNotMatch(stdout, /listening/);
  assert.match(stderr, /push\.debounce: must be a duration/);
  assert.match(stderr, /feeds: /);
});

test('serve with a missing config file names the file and exits 1', async () => {
  const { code, stderr } = await run(['serve', '--config', '/nonexistent/proxy.yaml']);
  assert.equal(code, 1);
  assert.match(stderr, /\/nonexistent\/proxy\.yaml/);
});

test('notify tells the running sidecar, which sends the iPP HEAD; refusals exit non-zero', async (t) => {
  const heads: string[] = [];
  const peer = await startServer(t, (req, res) => {
    heads.push(req.method ?? '');
    res.writeHead(200).end();
  });
  const upstream = await startServer(t, (_req, res) => res.writeHead(404).end());
  const listings = { 'beach-house': { peers: [{ name: 'airbnb', url: `${peer.url}/ical/1.ics` }] } };
  const { url } = await startApp(t, upstream.url, { listings, push: { watch: 0 }, admin: { token: 'secret-token' } });
  const yaml = (listen: string) => [
    `listen: ${listen}`, `upstream: ${upstream.url}`, 'store: memory', 'feeds:', '  - path: /calendar/{listing}.ics',
    'listings:', '  beach-house:', '    peers:', `      - { name: airbnb, url: "${peer.url}/ical/1.ics" }`,
    'admin:', '  token: secret-token',
  ].join('\n');
  const config = await tempConfig(t, yaml(new URL(url).host));
  const ok = await run(['notify', 'beach-house', '--config', config]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /beach-house: change accepted; notifying airbnb/);
  for (let i = 0; i < 200 && heads.length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(heads, ['HEAD']);

  const unknown = await run(['notify', 'nope', '--config', config]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /nope: not a listing/);
  const down = await run(['notify', 'beach-house', '--config', await tempConfig(t, yaml(`127.0.0.1:${await closedPort()}`))]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /not reachable/);
});

/** Every line the process wrote, stdout (log lines) and stderr together. */
test('check accepts a store in a writable directory and creates nothing', async (t) => {
  const config = await tempConfig(t, 'upstream: http://127.0.0.1:9\nstore: ./data/sub/state.db\nfeeds:\n  - path: /c/{listing}.ics\n');
  const { code, stdout, stderr } = await run(['check', '--config', config]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /store\s+.*\/data\/sub\/state\.db \(file\)/);
  await assert.rejects(stat(join(dirname(config), 'data')), { code: 'ENOENT' });
});

// Root writes through permission bits, so this runs where the suite is not root; the
// file-as-directory case above covers the check as root.
const isRoot = process.getuid?.() === 0;
test('check refuses a store file it cannot write', { skip: isRoot && 'running as root' }, async (t) => {
  const config = await tempConfig(t, 'upstream: http://127.0.0.1:9\nstore: ./state.db\nfeeds:\n  - path: /c/{listing}.ics\n');
  const store = join(dirname(config), 'state.db');
  await writeFile(store, '');
  await chmod(store, 0o444);
  const { code, stderr } = await run(['check', '--config', config]);
  assert.equal(code, 1);
  assert.match(stderr, new RegExp(`^store: cannot write ${store.replaceAll('.', '\\.')}: permission denied \\(`, 'm'));
});

test('--help names the --config default once, and every command still falls back to it', async () => {
  for (const command of ['serve', 'check', 'notify']) {
    const { code, stdout } = await run([command, '--help']);
    assert.equal(code, 0);
    assert.equal(stdout.match(/default/g)?.length, 1, `${command} --help:\n${stdout}`);
    assert.match(stdout.replace(/\s+/g, ' '), /\(default: \$ICALPUSH_CONFIG, then \.\/proxy\.yaml\)/);
  }
  const { code, stderr } = await run(['check'], { ICALPUSH_CONFIG: '/nonexistent/icalpush.yaml' });
  assert.equal(code, 1);
  assert.match(stderr, /\/nonexistent\/icalpush\.yaml/);
});

test('npm run demo -- --help says what the demo does and does not run it', async () => {
  const child = spawn(process.execPath, ['src/demo/main.ts', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: npm run demo\n/);
  assert.doesNotMatch(stdout, /guest books/);
});
