// Regression (found in review): a maxAge answer could be an upstream answer that never reached the
// snapshot (kept before it was analysed), sent with the snapshot's ETag, and then kept by clients through
// 304s. Only an applied answer is kept now, with the tag it was applied under.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

test('with maxAge, an answer the analysis refused is never served under the snapshot\'s ETag', async (t) => {
  const good = calendarOf(stay('a', '20300101', '20300103'));
  // END:VCALENDAR only inside a value: it passes the byte search, the analysis finds no end.
  const truncated = `${good.slice(0, good.indexOf('END:VCALENDAR'))}X-NOTE:END:VCALENDAR\r\n`;
  const feed = { text: good };
  const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(feed.text));
  const app = await startApp(t, upstream.url, {
    feeds: [{ path: '/calendar/{listing}.ics', maxAge: '1m' }],
    listings: { x: {} },
    push: { watch: 0 },
  });
  const first = await request(`${app.url}/calendar/x.ics`);
  const etag = first.headers.etag;
  assert.equal(await first.body.text(), good);

  feed.text = truncated;
  const changed = await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  await changed.body.dump();
  await app.waitForLog((l) => l.msg === 'own feed read failed');

  const again = await request(`${app.url}/calendar/x.ics`);
  const body = await again.body.text();
  assert.ok(!(body === truncated && again.headers.etag === etag), 'the refused bytes went out under the snapshot\'s ETag');
  assert.equal(body, good);
});
