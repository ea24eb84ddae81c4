// The admin guard (SPEC "Admin"): bearer token when one is set, loopback clients otherwise;
// health probes stay open; only the socket address decides what is loopback.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import { isLoopback } from '../../src/http/admin-guard.ts';
import { createAdminHandler } from '../../src/http/admin.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

const token = 's3cret-admin-token';

test('isLoopback accepts 127.0.0.0/8, ::1 and IPv4-mapped 127.x only', () => {
  for (const address of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3']) {
    assert.equal(isLoopback(address), true, address);
  }
  for (const address of [
    undefined,
    '',
    '203.0.113.9',
    '10.0.0.1',
    '128.0.0.1',
    '::ffff:203.0.113.9',
    'fe80::1',
    '::',
    'localhost',
    '127.0.0.1, 203.0.113.9',
  ]) {
    assert.equal(isLoopback(address), false, String(address));
  }
});

test('without a token, a loopback client gets metrics', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/_icalpush/metrics`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(await res.body.text(), /^# TYPE icalpush_requests_total counter$/m);
});

test('without a token, a non-loopback client is refused with 403 and a fixed body', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const status = async () => ({});
  const admin = createAdminHandler({ store, registry: createRegistry(), status, isClosing: () => false });
  // The handler sees the client through req.socket only; a real server carries the answer.
  const server = await startServer(t, (req, res) => {
    const remote = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      socket: { remoteAddress: '203.0.113.9' },
    } as unknown as IncomingMessage;
    void admin(remote, res, req.url ?? '');
  });
  const res = await request(`${server.url}/_icalpush/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
  assert.equal(res.statusCode, 403);
  assert.equal(res.headers['www-authenticate'], undefined);
  assert.equal(await res.body.text(), 'forbidden\n');
  const probe = await request(`${server.url}/_icalpush/healthz`);
  assert.equal(probe.statusCode, 200);
  await probe.body.dump();
});

// A real client address that is not loopback: this machine's own non-internal IPv4 address.
test('with a token, a request without Authorization gets 401 and a Bearer challenge', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const res = await request(`${url}/_icalpush/metrics`);
  assert.equal(res.statusCode, 401);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
  assert.equal(await res.body.text(), 'unauthorized\n');
});

test('with a token, a wrong token gets 401 and is not echoed', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;
  for (const authorization of [`Bearer ${token}x`, 'Bearer wrong', `Basic ${token}`, token, 'Bearer ',
    basic(`${token}:`), basic(`ops:${token}x`), basic(token), 'Basic !!!']) {
    const res = await request(`${url}/_icalpush/metrics`, { headers: { authorization } });
    assert.equal(res.statusCode, 401, authorization);
    assert.equal(res.headers['www-authenticate'], 'Bearer');
    assert.equal(await res.body.text(), 'unauthorized\n');
  }
});

test('with a token, Basic credentials with the token as password (what a browser sends) are let in', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  for (const user of ['ops', '', 'any:thing']) {
    const authorization = `Basic ${Buffer.from(`${user.replace(':', '')}:${token}`).toString('base64')}`;
    const res = await request(`${url}/_icalpush/metrics`, { headers: { authorization } });
    assert.equal(res.statusCode, 200, user);
    await res.body.dump();
  }
});

test('with a token, the right token gets metrics', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const res = await request(`${url}/_icalpush/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  assert.match(await res.body.text(), /^process_start_time_seconds \d+$/m);
  const lower = await request(`${url}/_icalpush/metrics`, { headers: { authorization: `bearer ${token}` } });
  assert.equal(lower.statusCode, 200, 'the auth scheme is case-insensitive (RFC 9110 §11.1)');
  await lower.body.dump();
});

test('with a token, HEAD on metrics answers headers only', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const res = await request(`${url}/_icalpush/metrics`, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(await res.body.text(), '');
});

test('with a token, healthz and readyz stay open', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  for (const path of ['healthz', 'readyz']) {
    const res = await request(`${url}/_icalpush/${path}`);
    assert.equal(res.statusCode, 200, path);
    await res.body.dump();
  }
});

test('with a token, X-Forwarded-For: 127.0.0.1 without Authorization is still 401', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const res = await request(`${url}/_icalpush/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
  assert.equal(res.statusCode, 401);
  await res.body.dump();
});

test('with a token, unknown admin paths are guarded before the 404', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url, { admin: { token } });
  const anonymous = await request(`${url}/_icalpush/nope`);
  assert.equal(anonymous.statusCode, 401);
  await anonymous.body.dump();
  const authorized = await request(`${url}/_icalpush/nope`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(authorized.statusCode, 404);
  await authorized.body.dump();
});
