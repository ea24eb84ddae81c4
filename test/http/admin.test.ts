// Admin endpoints: liveness, readiness and its failure modes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { IcalpushError } from '../../src/errors.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

test('healthz answers 200 without touching the upstream', async (t) => {
  let hits = 0;
  const upstream = await startServer(t, (_req, res) => {
    hits += 1;
    res.end();
  });
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/_icalpush/healthz`);
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { status: 'ok' });
  assert.equal(hits, 0);
});

test('readyz answers 200 with the store kind when the store answers', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/_icalpush/readyz`);
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { status: 'ready', store: 'memory' });
});

test('readyz answers 503 when the store is unreachable', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const real = await openStore('memory');
  const broken: Store = {
    kind: 'memory',
    shared: false,
    namespace: (name) => real.namespace(name),
    queue: (name) => real.queue(name),
    ping: () => Promise.reject(new IcalpushError('STORE_UNAVAILABLE', 'down')),
    close: () => real.close(),
  };
  const { url } = await startApp(t, upstream.url, {}, broken);
  const res = await request(`${url}/_icalpush/readyz`);
  assert.equal(res.statusCode, 503);
  assert.deepEqual(await res.body.json(), {
    status: 'not ready',
    reason: 'store unreachable',
    store: 'memory',
  });
});

test('admin endpoints refuse methods other than GET and HEAD', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end());
  const { url } = await startApp(t, upstream.url);
  const res = await request(`${url}/_icalpush/healthz`, { method: 'POST', body: 'x' });
  assert.equal(res.statusCode, 405);
  assert.equal(res.headers.allow, 'GET, HEAD');
  await res.body.dump();
});
