// The command line as an operator runs it: real processes, real exit codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import pkg from '../../package.json' with { type: 'json' };

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
