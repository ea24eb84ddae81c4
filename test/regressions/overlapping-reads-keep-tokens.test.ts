// Regression: when two reads of a feed overlapped (a different Host: they cannot share one fetch) and
// the older finished last, a valid Sync-Token got 409 (20 of 20), forcing a full re-sync. An overtaken read
// now answers enhanced GET from the newest history (SPEC "Guarantees": a valid token is never refused).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

test('a valid Sync-Token is honoured by a read that an overlapping newer read overtook, 20 of 20', async (t) => {
  const feed = { text: calendarOf(stay('a', '20300101', '20300103')) };
  let slowAsked = Promise.withResolvers<void>();
  const upstream = await startServer(t, (req, res) => {
    const asked = feed.text;
    if (req.headers.host === 'slow.example') slowAsked.resolve();
    // The slow host's answer comes after the fast one that was asked for later.
    const delayMs = req.headers.host === 'slow.example' ? 120 : 0;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/calendar' }).end(asked), delayMs);
  });
  const app = await startApp(t, upstream.url, { push: { watch: 0 } });
  const enhanced = (host: string, token?: string) => request(`${app.url}/calendar/a.ics`, {
    headers: { host, prefer: 'subscribe-enhanced-get', ...(token ? { 'sync-token': token } : {}) },
  });
  const first = await enhanced('fast.example');
  let token = String(first.headers['sync-token']);
  await first.body.dump();
  const statuses: number[] = [];
  for (let i = 0; i < 20; i += 1) {
    // The slow read starts first; the fast one, asked later, sees a new booking and lands first.
    slowAsked = Promise.withResolvers<void>();
    const slow = enhanced('slow.example', token);
    await slowAsked.promise;
    feed.text = calendarOf(stay('a', '20300101', '20300103'), stay(`b${i}`, '20300201', '20300203'));
    const fast = await enhanced('fast.example', token);
    const overtaken = await slow;
    statuses.push(overtaken.statusCode);
    token = String(fast.headers['sync-token']);
    await Promise.all([fast.body.dump(), overtaken.body.dump()]);
  }
  assert.deepEqual(statuses.filter((s) => s === 409), [], `statuses: ${statuses.join(',')}`);
  assert.ok(statuses.every((s) => s === 200 || s === 304));
  const metrics = await (await request(`${app.url}/_icalpush/metrics`)).body.text();
  assert.match(metrics, /icalpush_feed_upstream_reads_total\{outcome="superseded"\} 20/, 'every slow read was overtaken');
});
