// Regression: when the own feed's body trickled (a byte now and then, never ending), timeouts.upstream
// bounded only the pause between chunks: every later GET joined the hung fetch, the watch stopped for all
// listings (a batch of 16 waited for its slowest), and SIGTERM did not exit in 45 s. Every outbound read
// now has a total deadline, the watch a slot per read, and shutdown its own bound.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

const normal = calendarOf(stay('s1', '20300101', '20300103'));

/** An upstream whose `/calendar/slow.ics` trickles while `trickling.on`; counts reads of each path. */
async function trickler(t: Parameters<typeof startServer>[0]) {
  const opened = Promise.withResolvers<void>();
  const state = { on: true, reads: new Map<string, number>(), open: new Set<ServerResponse>(), opened: opened.promise };
  const server = await startServer(t, (req, res) => {
    const path = req.url ?? '';
    state.reads.set(path, (state.reads.get(path) ?? 0) + 1);
    if (path.startsWith('/calendar/slow.ics') && state.on) {
      res.writeHead(200, { 'content-type': 'text/calendar' });
      res.write('BEGIN:VCALENDAR\r\n');
      state.open.add(res);
      opened.resolve();
      const timer = setInterval(() => res.write('X'), 100);
      res.on('close', () => {
        clearInterval(timer);
        state.open.delete(res);
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(normal);
  });
  t.after(() => {
    for (const res of state.open) res.destroy();
  });
  return { ...server, state };
}

test('a trickling feed body is cut at timeouts.upstream: every waiter gets 504, the next read starts clean', async (t) => {
  const upstream = await trickler(t);
  const app = await startApp(t, upstream.url, { timeouts: { upstream: '1s' }, push: { watch: 0 } });
  const started = performance.now();
  const [a, b] = await Promise.all([request(`${app.url}/calendar/slow.ics`), request(`${app.url}/calendar/slow.ics`)]);
  const tookMs = performance.now() - started;
  assert.deepEqual([a.statusCode, b.statusCode], [504, 504]);
  await Promise.all([a.body.dump(), b.body.dump()]);
  assert.ok(tookMs < 5_000, `cut after ${tookMs.toFixed(0)} ms`);
  assert.equal(upstream.state.reads.get('/calendar/slow.ics'), 1, 'the second GET joined the first read');

  upstream.state.on = false;
  const next = await request(`${app.url}/calendar/slow.ics`);
  assert.equal(next.statusCode, 200, 'the next read does not join the dead one');
  assert.equal(await next.body.text(), normal);
});

test('a stuck read costs the watch one slot: the other listings are still read on time', async (t) => {
  const upstream = await trickler(t);
  const app = await startApp(t, upstream.url, {
    timeouts: { upstream: '3s' },
    listings: { slow: {}, fast: {} },
    push: { watch: '100ms' },
  });
  // While the slow listing's read hangs (3 s deadline), the fast one keeps its 100 ms slot.
  await app.waitForLog((l) => l.msg === 'own feed read failed' && l.listing === 'slow');
  const fastReads = upstream.state.reads.get('/calendar/fast.ics') ?? 0;
  assert.ok(fastReads >= 10, `the fast listing was read ${fastReads} times during the hang`);
});

test('shutdown finishes within timeouts.shutdown while a trickling read is in flight', async (t) => {
  const upstream = await trickler(t);
  const app = await startApp(t, upstream.url, {
    timeouts: { upstream: '30s', shutdown: '1s' },
    listings: { slow: {} },
    push: { watch: '50ms' },
  });
  const inflight = request(`${app.url}/calendar/slow.ics`).then((res) => res.body.dump(), () => undefined);
  await upstream.state.opened;
  const started = performance.now();
  await app.app.close();
  const tookMs = performance.now() - started;
  await inflight;
  assert.ok(tookMs < 1_500, `closed in ${tookMs.toFixed(0)} ms`);
});
