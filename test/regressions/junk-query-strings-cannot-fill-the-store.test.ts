// Regression: 10,000 GETs with junk query strings (`?utm=N`) stored 10,000 snapshots, and then a new
// listing's enhanced GET got no Sync-Token. Now at most snapshots.maxVariantsPerPath query variants of a
// path are stored (further ones are served unversioned), nothing is kept of a variant past the cap, a feed
// with clients is never evicted for them, and a configured listing's own feed always gets its snapshot.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

const body = Buffer.from(calendarOf(stay('a', '20300101', '20300103')));

type Status = { feeds: { feed: string; version?: number }[] };

test('junk query variants of one path stop at maxVariantsPerPath; other feeds keep their tokens', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(body));
  const app = await startApp(t, upstream.url, { listings: { fresh: {} }, push: { watch: 0 } });
  const enhanced = (path: string, token?: string) => request(`${app.url}${path}`, {
    headers: { prefer: 'subscribe-enhanced-get', ...(token ? { 'sync-token': token } : {}) },
  });
  const first = await enhanced('/calendar/a.ics');
  const token = first.headers['sync-token'];
  assert.ok(token);
  await first.body.dump();

  for (let i = 0; i < 300; i += 1) {
    const res = await request(`${app.url}/calendar/a.ics?utm=${i}`);
    assert.equal(res.statusCode, 200);
    assert.ok(res.headers.etag, 'a junk variant is still answered, with an ETag');
    await res.body.dump();
  }
  const status = await (await request(`${app.url}/_icalpush/status`)).body.json() as Status;
  const variants = status.feeds.filter((f) => f.feed.startsWith('/calendar/a.ics'));
  assert.equal(variants.length, 16, 'the plain path and 15 query variants, no more');

  const again = await enhanced('/calendar/a.ics', String(token));
  assert.equal(again.statusCode, 304, 'the token issued before the flood still works');
  await again.body.dump();
  const fresh = await enhanced('/calendar/fresh.ics');
  assert.equal(fresh.statusCode, 200);
  assert.ok(fresh.headers['sync-token'], 'a new listing gets its Sync-Token');
  await fresh.body.dump();
});

test('past maxFeeds, junk paths are served unversioned and a configured listing still gets its snapshot', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(body));
  const app = await startApp(t, upstream.url, {
    listings: { fresh: {} }, snapshots: { maxFeeds: 20 }, push: { watch: 0 },
  });
  for (let i = 0; i < 100; i += 1) await (await request(`${app.url}/calendar/junk-${i}.ics`)).body.dump();
  const status = await (await request(`${app.url}/_icalpush/status`)).body.json() as Status;
  assert.ok(status.feeds.length <= 20, `${status.feeds.length} feeds kept`);
  const fresh = await request(`${app.url}/calendar/fresh.ics`, { headers: { prefer: 'subscribe-enhanced-get' } });
  assert.ok(fresh.headers['sync-token'], 'the listing\'s own feed is versioned whatever fills the store');
  await fresh.body.dump();
});
