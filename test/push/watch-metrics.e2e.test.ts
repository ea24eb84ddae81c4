// The watch's metrics as an operator scrapes them (SPEC "Push": reads by reason, the budget in force): a real
// app, an upstream on 127.0.0.1 that sends an ETag and answers 304 to it, an adaptive watch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { staysCalendar } from '../helpers/calendars.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';

test('watch reads are counted by reason, with the budget in force and the listings by state', async (t) => {
  const body = staysCalendar([]);
  let conditional = 0;
  const upstream = await startServer(t, (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') {
      conditional += 1;
      res.writeHead(304, { etag: '"v1"' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar', etag: '"v1"' }).end(body);
  });
  const listings = Object.fromEntries(['a', 'b', 'c'].map((id) => [id, { peers: [] }]));
  const app = await startApp(t, upstream.url, {
    listings, push: { watch: { interval: '100ms', idleInterval: '200ms', maxRate: '40/s' } },
  });
  const scrape = async () => (await (await request(`${app.url}/_icalpush/metrics`)).body.text());
  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  await eventually(async () => {
    const text = await scrape();
    return (value(text, 'icalpush_watch_reads_total{reason="not-modified"}') ?? 0) >= 3;
  });
  const text = await scrape();
  // Nothing happened to the listings: they are idle, read every idleInterval, and the platform answers 304s.
  assert.ok((value(text, 'icalpush_watch_reads_total{reason="idle"}') ?? 0) >= 3, text);
  assert.equal(value(text, 'icalpush_watch_budget_reads_per_second'), 40);
  assert.equal(value(text, 'icalpush_watch_listings{state="idle"}'), 3);
  assert.equal(value(text, 'icalpush_watch_listings{state="active"}'), 0);
  assert.ok(conditional >= 3);
  // A peer's HEAD on a's feed is activity: a is read as active from now on.
  await (await request(`${app.url}/calendar/a.ics`, { method: 'HEAD' })).body.dump();
  await eventually(async () => (value(await scrape(), 'icalpush_watch_reads_total{reason="active"}') ?? 0) >= 2);
  const after = await scrape();
  assert.equal(value(after, 'icalpush_watch_listings{state="active"}'), 1);
  assert.equal(value(after, 'icalpush_watch_listings{state="idle"}'), 2);
});
