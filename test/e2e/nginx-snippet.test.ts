// The README's nginx snippet, run for real: feed and trigger paths reach icalpush, the rest
// goes straight to the platform. Skipped where nginx is not installed (.ci/run installs it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { closedPort, startServer } from '../helpers/servers.ts';
import { assertNginxConfigValid, nginxBinary, writeNginxConfig } from '../helpers/nginx.ts';

const nginx = nginxBinary;

test('the nginx snippet routes feeds and triggers through icalpush and the rest around it', {
  skip: nginx ? false : 'nginx not installed',
}, async (t) => {
  const upstream = await startServer(t, (req, res) => {
    const feed = req.url?.endsWith('.ics') === true;
    res.writeHead(200, { 'content-type': feed ? 'text/calendar' : 'text/plain' });
    res.end(feed ? 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n' : `platform saw ${req.method} ${req.url}`);
  });
  const sidecar = await startApp(t, upstream.url, {
    push: { triggers: [{ method: 'POST', path: '/bookings/{listing}/**' }] },
  });
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-nginx-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await closedPort();
  const snippet = resolve('config/nginx/icalpush-locations.conf');
  await writeNginxConfig(dir, `  upstream icalpush { server ${new URL(sidecar.url).host}; keepalive 4; }
  upstream platform { server ${new URL(upstream.url).host}; keepalive 4; }
  server {
    listen 127.0.0.1:${port};
    include ${snippet};
    location / {
      proxy_pass http://platform;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`);
  assertNginxConfigValid(dir);
  const child = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  t.after(() => child.kill('SIGTERM'));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await (await request(`${base}/`)).body.dump();
      break;
    } catch {
      await sleep(50);
    }
  }
  const paths: Array<[string, string]> = [
    ['GET', '/calendar/beach-house.ics'],
    ['HEAD', '/calendar/beach-house.ics'],
    ['POST', '/bookings/beach-house/new'],
    ['GET', '/listings/beach-house'],
    ['GET', '/_icalpush/healthz'],
  ];
  for (const [method, path] of paths) {
    const res = await request(`${base}${path}`, {
      method,
      ...(method === 'POST' ? { body: '{}' } : {}),
    });
    assert.equal(res.statusCode, 200, `${method} ${path}`);
    await res.body.dump();
    // The Link a client gets names nginx, on its own (non-default) port.
    if (path.startsWith('/calendar/')) {
      assert.match(String(res.headers.link), new RegExp(`^<http://127\\.0\\.0\\.1:${port}/calendar/beach-house\\.ics>;`),
        `${method} ${path}`);
    }
  }
  await sidecar.waitForLog(
    (l) => (l.req as { url?: string } | undefined)?.url === '/_icalpush/healthz',
  );
  await sidecar.waitForLog((l) => (l.req as { method?: string } | undefined)?.method === 'POST');
  const seen = sidecar.logs
    .filter((l) => l.msg === 'request')
    .map((l) => `${(l.req as { method: string }).method} ${(l.req as { url: string }).url}`);
  assert.deepEqual(seen.sort(), [
    'GET /_icalpush/healthz',
    'GET /calendar/beach-house.ics',
    'HEAD /calendar/beach-house.ics',
    'POST /bookings/beach-house/new',
  ]);
});
