// The command line as an operator runs it: real processes, real exit codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import pkg from '../../package.json' with { type: 'json' };
import { startApp } from '../helpers/app.ts';
import { closedPort, startServer } from '../helpers/servers.ts';

async function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['src/main.ts', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

async function tempConfig(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'proxy.yaml');
  await writeFile(path, text);
  return path;
}

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
const linesOf = (out: { stdout: string; stderr: string }) => `${out.stdout}\n${out.stderr}`.split('\n').filter(Boolean);

test('serve on a port in use exits 1 with one line naming the address and the cause, no stack', async (t) => {
  const taken = createNetServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as AddressInfo;
  const config = await tempConfig(t, `listen: 127.0.0.1:${port}\nupstream: http://127.0.0.1:9\nstore: memory\nfeeds:\n  - path: /c/{listing}.ics\n`);
  const out = await run(['serve', '--config', config]);
  assert.equal(out.code, 1);
  const lines = linesOf(out);
  const mentions = lines.filter((line) => line.includes(String(port)));
  assert.equal(mentions.length, 1, lines.join('\n'));
  const fatal = JSON.parse(mentions[0] ?? '{}') as { level: string; msg: string; err: { code: string; message: string } };
  assert.equal(fatal.level, 'fatal');
  assert.equal(fatal.msg, 'cannot listen');
  assert.deepEqual(fatal.err, {
    code: 'LISTEN_UNAVAILABLE',
    message: `cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`,
  });
  assert.ok(!lines.some((line) => line.includes('    at ') || line.includes('\\n    at ')), lines.join('\n'));
  assert.equal(lines.join('\n').split('EADDRINUSE').length - 1, 1, 'the cause is told once');
});

test('serve with a store that cannot be created exits 1 with one line naming the file, no stack', async (t) => {
  const config = await tempConfig(t, 'listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\nfeeds:\n  - path: /c/{listing}.ics\n');
  const dir = dirname(config);
  await writeFile(join(dir, 'file.txt'), 'not a directory');
  const store = join(dir, 'file.txt', 'db.sqlite');
  await writeFile(config, `store: ${store}\n`, { flag: 'a' });
  const out = await run(['serve', '--config', config]);
  assert.equal(out.code, 1);
  const lines = linesOf(out);
  assert.equal(lines.length, 1, lines.join('\n'));
  const fatal = JSON.parse(lines[0] ?? '{}') as { msg: string; err: { code: string; message: string } };
  assert.equal(fatal.msg, 'store unavailable');
  assert.deepEqual(fatal.err, {
    code: 'STORE_UNAVAILABLE',
    message: `cannot create the directory of store file ${store}: ${join(dir, 'file.txt')} is not a directory`,
  });
});

test('check refuses a store path under a regular file, in the format of config problems', async (t) => {
  const config = await tempConfig(t, 'upstream: http://127.0.0.1:9\nfeeds:\n  - path: /c/{listing}.ics\n');
  const dir = dirname(config);
  await writeFile(join(dir, 'file.txt'), 'not a directory');
  const store = join(dir, 'file.txt', 'db.sqlite');
  await writeFile(config, `store: ${store}\n`, { flag: 'a' });
  const { code, stdout, stderr } = await run(['check', '--config', config]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(
    stderr,
    `${config}: invalid configuration\nstore: cannot write ${store}: ${join(dir, 'file.txt')} is not a directory (${config})\n`,
  );
});

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
