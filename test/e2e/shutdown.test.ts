// Graceful shutdown: in-flight requests finish, new ones are refused, the store is closed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

test('close() lets an in-flight slow request finish, then refuses new connections', async (t) => {
  const { promise: inFlight, resolve: arrived } = Promise.withResolvers<void>();
  const upstream = await startServer(t, (_req, res) => {
    arrived();
    setTimeout(() => res.end('slow answer'), 300);
  });
  const started = await startApp(t, upstream.url);
  const client = new Client(started.url);
  t.after(() => client.destroy());
  const pending = client.request({ path: '/slow', method: 'GET' });
  await inFlight;
  const closing = started.app.close();
  const res = await pending;
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'slow answer');
  await closing;
  await assert.rejects(request(`${started.url}/after`), /ECONNREFUSED/);
});

test('close() cuts requests still running after the shutdown timeout', async (t) => {
  const upstream = await startServer(t, () => {
    // never answers
  });
  const started = await startApp(t, upstream.url, {
    timeouts: { shutdown: '100ms', upstream: '30s' },
  });
  const outcome = request(`${started.url}/forever`).then(
    () => 'answered',
    () => 'cut',
  );
  await sleep(50);
  const began = Date.now();
  await started.app.close();
  assert.ok(Date.now() - began < 5_000);
  assert.equal(await outcome, 'cut');
  assert.ok(started.logs.some((l) => l.msg === 'shutdown cut in-flight requests'));
});

test('SIGTERM on `icalpush serve` finishes the in-flight request and exits 0', async (t) => {
  const { promise: inFlight, resolve: arrived } = Promise.withResolvers<void>();
  const upstream = await startServer(t, (_req, res) => {
    arrived();
    setTimeout(() => res.end('finished'), 400);
  });
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-sigterm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'proxy.yaml');
  await writeFile(
    configPath,
    `listen: 127.0.0.1:0\nupstream: ${upstream.url}\nstore: ./state.db\nfeeds:\n  - path: /calendar/{listing}.ics\n`,
  );
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  let listening: ((url: string) => void) | undefined;
  const ready = new Promise<string>((resolve) => {
    listening = resolve;
  });
  child.stdout.on('data', (d: string) => {
    out += d;
    const match = /"msg":"listening"/.test(out) && /"port":(\d+)/.exec(out);
    if (match) listening?.(`http://127.0.0.1:${match[1]}`);
  });
  const url = await ready;
  const pending = request(`${url}/slow`);
  await inFlight;
  child.kill('SIGTERM');
  const res = await pending;
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'finished');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  assert.match(out, /"msg":"closed"/);
});
