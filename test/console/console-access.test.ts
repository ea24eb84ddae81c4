// Who reaches the console when no admin token is set: loopback clients only (SPEC "Admin"). A client from
// elsewhere gets a 403 page, never the data, whatever X-Forwarded-For says.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import { createConsoleHandler } from '../../src/console/console-handler.ts';
import type { ConsoleModel } from '../../src/console/console-model.ts';
import { createMinuteRecorder } from '../../src/console/minute-series.ts';
import { createAdminHandler } from '../../src/http/admin.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

test('without a token, the console refuses a client that is not loopback with a 403 page', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const registry = createRegistry();
  const clock = createFakeClock();
  const recorder = createMinuteRecorder({ registry, clock });
  t.after(() => recorder.close());
  let asked = 0;
  // The model is never asked: the guard answers first.
  const model: ConsoleModel = {
    overview: () => Promise.reject(new Error(`asked ${(asked += 1)}`)),
    listings: () => Promise.reject(new Error(`asked ${(asked += 1)}`)),
    listing: () => Promise.reject(new Error(`asked ${(asked += 1)}`)),
  };
  const admin = createAdminHandler({ store, registry, status: async () => ({}), isClosing: () => false,
    console: createConsoleHandler({ model, recorder, now: () => clock.now() }) });
  const server = await startServer(t, (req, res) => {
    const remote = { method: req.method, url: req.url, headers: req.headers, socket: { remoteAddress: '203.0.113.9' } };
    void admin(remote as unknown as IncomingMessage, res, (req.url ?? '').split('?')[0] ?? '');
  });
  for (const path of ['/_icalpush/', '/_icalpush/console/listings?q=a', '/_icalpush/console/listings/x', '/_icalpush/overview']) {
    const res = await request(`${server.url}${path}`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
    assert.equal(res.statusCode, 403, path);
    assert.equal(res.headers['www-authenticate'], undefined);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(await res.body.text(), /<h1>Forbidden<\/h1>/);
  }
  assert.equal(asked, 0);
});
