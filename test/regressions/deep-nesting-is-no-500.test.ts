// Regression: 3,000 nested `BEGIN:X` blocks blew the stack (RangeError), which was logged as a store
// failure and answered 500 on every GET of that feed. Nesting is now capped (split.ts maxNestingDepth)
// and no code a feed can reach recurses past it; nothing a feed contains makes an answer a 500.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { deeplyNested } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';

for (const depth of [3_000, 100_000]) {
  test(`a feed with ${depth} nested BEGIN:X blocks is answered 200 with its bytes, versioned, every time`, async (t) => {
    const body = deeplyNested(depth);
    const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(body));
    const app = await startApp(t, upstream.url, { listings: { x: {} }, push: { watch: 0 } });
    for (let i = 0; i < 3; i += 1) {
      const res = await request(`${app.url}/calendar/x.ics`);
      assert.equal(res.statusCode, 200);
      assert.ok(res.headers.etag);
      assert.equal(await res.body.text(), body);
    }
    const enhanced = await request(`${app.url}/calendar/x.ics`, { headers: { prefer: 'subscribe-enhanced-get' } });
    assert.equal(enhanced.statusCode, 200);
    assert.ok(enhanced.headers['sync-token']);
    assert.match(await enhanced.body.text(), /UID:deep/);
    assert.ok(!app.logs.some((l) => l.level === 'error' || l.level === 'fatal'), 'nothing logged as an error');
  });
}
