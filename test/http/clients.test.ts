// The outbound client: a total deadline (a body that trickles is cut, not only a pause), a byte cap,
// and close() aborting every request under way; outcomes are values, never throws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { createOutboundClient } from '../../src/http/clients.ts';
import { closedPort, startServer } from '../helpers/servers.ts';

test('a body that trickles is cut at the total deadline, though no pause is longer than it', async (t) => {
  const server = await startServer(t, (_req, res) => {
    res.writeHead(200);
    const timer = setInterval(() => res.write('x'), 50);
    res.on('close', () => clearInterval(timer));
  });
  const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 1_000 });
  t.after(() => client.close());
  const started = performance.now();
  const result = await client.request(`${server.url}/feed`, { method: 'GET', deadlineMs: 300, maxBodyBytes: 1_000_000 });
  assert.equal(result.kind, 'failed');
  assert.equal(result.kind === 'failed' && result.error.code, 'UPSTREAM_TIMEOUT');
  assert.ok(performance.now() - started < 2_000);
});

test('a body past the byte cap is too-large, a declared one at once', async (t) => {
  const server = await startServer(t, (req, res) => {
    if (req.url === '/declared') res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000));
    else res.writeHead(200).end('x'.repeat(5000));
  });
  const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 1_000 });
  t.after(() => client.close());
  for (const path of ['/declared', '/chunked']) {
    const result = await client.request(`${server.url}${path}`, { method: 'GET', deadlineMs: 2_000, maxBodyBytes: 1_000 });
    assert.deepEqual(result, { kind: 'too-large', status: 200 });
  }
  const fits = await client.request(`${server.url}/chunked`, { method: 'GET', deadlineMs: 2_000, maxBodyBytes: 10_000 });
  assert.equal(fits.kind === 'answer' && fits.body.length, 5000);
});

test('an unreachable peer is a failed outcome, and close() aborts a request under way as SHUTTING_DOWN', async (t) => {
  const client = createOutboundClient({ clock: systemClock, connectTimeoutMs: 1_000 });
  const refused = await client.request(`http://127.0.0.1:${await closedPort()}/x`, { method: 'HEAD', deadlineMs: 2_000, maxBodyBytes: 0 });
  assert.equal(refused.kind === 'failed' && refused.error.code, 'UPSTREAM_UNREACHABLE');
  const arrived = Promise.withResolvers<void>();
  const server = await startServer(t, () => arrived.resolve());
  const pending = client.request(`${server.url}/hang`, { method: 'GET', deadlineMs: 60_000, maxBodyBytes: 1_000 });
  await arrived.promise;
  await client.close();
  const result = await pending;
  assert.equal(result.kind === 'failed' && result.error.code, 'SHUTTING_DOWN');
});
