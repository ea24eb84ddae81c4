// Regression: one peer feed event `RRULE:FREQ=HOURLY;COUNT=2147483647` (or DAILY;COUNT=100000, or 300
// FREQ=MINUTELY events) made every request of every client wait 27–56 s while it was expanded, healthz
// included. Expansion now runs in a worker thread, in one pass per rule, within an iteration budget; a
// rule past it is busy-safe (parse.ts). Bounds are generous: the machine is noisy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { absurdRules, calendarOf, probeWhile, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

const own = calendarOf(stay('own-1', '20300301', '20300304'));

for (const [kind, hostile] of Object.entries(absurdRules)) {
  test(`healthz answers within 250 ms while a peer's ${kind} feed is read`, async (t) => {
    const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(own));
    const peer = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(hostile));
    const app = await startApp(t, upstream.url, {
      listings: { x: { peers: [{ name: 'hostile', url: `${peer.url}/x.ics`, notify: false }] } },
      push: { watch: 0, debounce: '1s' },
    });
    const { slowestMs, stallMs } = await probeWhile(app.url, async () => {
      const head = await request(`${app.url}/calendar/x.ics`, { method: 'HEAD' });
      await head.body.dump();
      // The inbound HEAD read the peer: the run is logged once its nights are known.
      await app.waitForLog((l) => l.msg === 'inbound notification: refresh');
    });
    assert.ok(slowestMs < 250, `slowest healthz ${slowestMs.toFixed(1)} ms`);
    assert.ok(stallMs < 250, `longest event-loop stall ${stallMs.toFixed(1)} ms`);
    const read = app.logs.find((l) => l.msg === 'peer read');
    assert.ok(read, 'the peer was read');
    assert.ok(Number(read.nights) > 0, 'its busy-safe nights count as busy');
  });

  test(`the own feed with ${kind} is answered and versioned, the loop kept`, async (t) => {
    const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(hostile));
    const app = await startApp(t, upstream.url, { listings: { x: {} }, push: { watch: 0 } });
    const { result, slowestMs } = await probeWhile(app.url, async () => {
      const res = await request(`${app.url}/calendar/x.ics`, { headers: { prefer: 'subscribe-enhanced-get' } });
      return { status: res.statusCode, token: res.headers['sync-token'], body: await res.body.text() };
    });
    assert.equal(result.status, 200);
    assert.ok(result.token, 'a Sync-Token: the feed is versioned');
    assert.ok(slowestMs < 250, `slowest healthz ${slowestMs.toFixed(1)} ms`);
    const status = await (await request(`${app.url}/_icalpush/status`)).body.json() as { feeds: { lastError?: unknown }[] };
    assert.equal(status.feeds[0]?.lastError, undefined);
  });
}
