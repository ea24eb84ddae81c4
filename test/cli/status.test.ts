// `icalpush status` against the real app in a known state (console-mesh.ts), run through the command line's
// entry as main.ts runs it: the overview and one listing as tables, the raw JSON, and every refusal's exit code.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { runCli } from '../../src/cli/program.ts';
import { run, tempConfig } from '../helpers/cli.ts';
import { meshSecrets, meshToken, startConsoleMesh } from '../helpers/console-mesh.ts';
import { closedPort } from '../helpers/servers.ts';

async function status(...args: string[]) {
  const out = { stdout: '', stderr: '' };
  const sink = (key: keyof typeof out) => new Writable({
    write(chunk: Buffer, _encoding, done) {
      out[key] += chunk.toString('utf8');
      done();
    },
  });
  const outcome = await runCli(['status', ...args], { stdout: sink('stdout'), stderr: sink('stderr'), env: {} });
  assert.ok('exitCode' in outcome);
  for (const secret of meshSecrets) assert.ok(!`${out.stdout}${out.stderr}`.includes(secret), secret);
  return { code: outcome.exitCode, ...out };
}

const configText = (listen: string, token: string) => [`listen: ${listen}`, 'upstream: http://127.0.0.1:9',
  'store: memory', 'feeds:', '  - path: /calendar/{listing}.ics', 'admin:', `  token: ${token}`].join('\n');

test('icalpush status: the running sidecar\'s overview and listings as tables, its JSON, its refusals', async (t) => {
  const mesh = await startConsoleMesh(t);
  const listen = new URL(mesh.app.url).host;
  const config = await tempConfig(t, configText(listen, meshToken));

  await t.test('the overview: listings, notifications sent, the held drop', async () => {
    const { code, stdout, stderr } = await status('--config', config);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^replica \S+, store memory, generated at 2026-12-01 23:3\d:\d\d UTC, replicas seen 1\n/);
    assert.match(stdout, /^listings +3$/m);
    assert.match(stdout, /^peers +4 \(1 failing\)$/m);
    assert.match(stdout, /^notifications, last hour +1 sent, 0 failed, 1 retried, 0 dropped, 0 refused$/m);
    assert.match(stdout, /^pending notifications +1 \(0 overdue\)$/m);
    assert.match(stdout, /^held drops\nlisting +feed +since +entities\n[- ]+\nhouse +\/calendar\/house\.ics +2026-12-01 23:35:00 +0$/m);
  });

  await t.test('--listing rome: peers, vrbo\'s 503, the pending retry, the timeline in Europe/Rome', async () => {
    const { code, stdout, stderr } = await status('--listing', 'rome', '--config', config);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^feed \/calendar\/rome\.ics\?key=\[REDACTED\]$/m);
    assert.match(stdout, /^time zone Europe\/Rome, today 2026-12-02 \(rule: local date\)$/m);
    assert.match(stdout, /^airbnb +http:\/\/127\.0\.0\.1:\d+\/airbnb\/rome\.ics\?s=\[REDACTED\] +yes +2026-12-02 00:35:00 \(conditional\)/m);
    assert.match(stdout, /^vrbo +\S+ +yes +2026-12-02 00:35:00 \(conditional\) +status 503 at 2026-12-02 00:35:0\d$/m);
    assert.match(stdout, /^pending notifications\npeer +attempts +next attempt +last error\n[- ]+\nvrbo +1 +2026-12-02 00:35:0\d +status 503$/m);
    const timeline = stdout.slice(stdout.indexOf('decisions, newest first (times in Europe/Rome)'));
    const [, , , newest, older] = timeline.split('\n');
    assert.match(newest ?? '', /^2026-12-02 00:3\d:\d\d +primary +unexplained-nights +3 +0 +airbnb, vrbo +3 nights became busy/);
    assert.match(older ?? '', /^2026-12-02 00:30:00 +no-night-change +first-read +0 +0 +- +first read/);
  });

  await t.test('--listing of an id the sidecar does not have exits 1', async () => {
    const { code, stdout, stderr } = await status('--listing', 'nope', '--config', config);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /^nope: not a listing of the running sidecar at http:\/\/127\.0\.0\.1:\d+\n$/);
  });

  await t.test('--json prints the JSON the sidecar answered', async () => {
    const overview = await status('--json', '--config', config);
    assert.equal(overview.code, 0, overview.stderr);
    assert.equal((JSON.parse(overview.stdout) as { listings: number }).listings, 3);
    const rome = await status('--json', '--listing', 'rome', '--config', config);
    assert.equal(rome.code, 0, rome.stderr);
    assert.deepEqual((JSON.parse(rome.stdout) as { peers: { name: string }[] }).peers.map((p) => p.name), ['airbnb', 'vrbo']);
  });

  await t.test('a wrong admin token is refused: exit 1, the token not printed', async (t) => {
    const wrong = await tempConfig(t, configText(listen, 'wrong-token-e81b'));
    const { code, stdout, stderr } = await status('--config', wrong);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /refused \(401\): check admin\.token in /);
    assert.ok(!stderr.includes('wrong-token-e81b'));
  });

  await t.test('a config whose listen has no sidecar: exit 1, not reachable', async (t) => {
    const down = await tempConfig(t, configText(`127.0.0.1:${await closedPort()}`, meshToken));
    const { code, stderr } = await status('--config', down);
    assert.equal(code, 1);
    assert.match(stderr, /the sidecar is not reachable \(ECONNREFUSED\); is it running\?/);
  });

  await t.test('an invalid config exits 2', async (t) => {
    const bad = await tempConfig(t, 'listen: 127.0.0.1:1\nfeeds: nope\n');
    const { code, stderr } = await status('--config', bad);
    assert.equal(code, 2);
    assert.match(stderr, /invalid configuration/);
  });
});

test('icalpush status --help names its options, the --config default once, and the exit codes', async () => {
  const { code, stdout } = await run(['status', '--help']);
  assert.equal(code, 0);
  assert.match(stdout, /--listing <id>/);
  assert.match(stdout, /--json/);
  assert.equal(stdout.match(/default/g)?.length, 1, stdout);
  assert.match(stdout.replace(/\s+/g, ' '), /\(default: \$ICALPUSH_CONFIG, then \.\/proxy\.yaml\)/);
  assert.match(stdout, /Exit 0 shown, 1 not reachable/);
});
