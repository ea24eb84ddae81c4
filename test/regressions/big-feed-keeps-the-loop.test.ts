// Regression: a 12 MB first read blocked healthz for 2.1 s, and a 16 MB feed took 1.1–1.6 GB (about 70×
// the feed). Feeds are now analysed in a worker thread and kept as text, and a feed of more entities than
// snapshots.maxEntitiesPerFeed is served unversioned. Memory is measured by `npm run bench -- hostile`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { bigFeed, probeWhile } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

const cases = [
  { name: 'a 12 MB feed of 24,000 events', body: bigFeed(24_000, 12 * 1024 * 1024), versioned: true },
  { name: 'a 16 MB feed of 100,000 events', body: bigFeed(100_000, 16 * 1024 * 1024), versioned: false },
];

for (const { name, body: text, versioned } of cases) {
  test(`healthz answers within 250 ms during the first read of ${name}`, async (t) => {
    // Bytes, not a string: encoding 12 MB per answer would stall this process, which the sidecar shares.
    const body = Buffer.from(text);
    const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(body));
    const app = await startApp(t, upstream.url, { listings: { x: {} }, push: { watch: 0 } });
    const { result, slowestMs, answers } = await probeWhile(app.url, async () => {
      const res = await request(`${app.url}/calendar/x.ics`, { headers: { prefer: 'subscribe-enhanced-get' } });
      return { status: res.statusCode, etag: res.headers.etag, token: res.headers['sync-token'], bytes: (await res.body.arrayBuffer()).byteLength };
    });
    assert.equal(result.status, 200);
    assert.ok(result.etag, 'an ETag either way');
    assert.equal(result.token !== undefined, versioned, versioned ? 'versioned' : 'past maxEntitiesPerFeed: unversioned');
    assert.ok(answers > 3, `healthz answered ${answers} times during the read`);
    assert.ok(slowestMs < 250, `slowest healthz ${slowestMs.toFixed(1)} ms`);
    if (!versioned) {
      const status = await (await request(`${app.url}/_icalpush/status`)).body.json() as { feeds: { unversioned?: string }[] };
      assert.equal(status.feeds[0]?.unversioned, 'too-many-entities');
    }
  });
}
