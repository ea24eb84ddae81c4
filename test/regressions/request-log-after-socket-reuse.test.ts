// Regression: the request line read req.socket after the answer was sent; on a keep-alive
// connection the socket may already be detached then, and the handler threw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from 'undici';
import { startApp } from '../helpers/app.ts';
import { readBody, startServer } from '../helpers/servers.ts';

test('pipelined keep-alive POSTs each get a request line with the client address', async (t) => {
  const upstream = await startServer(t, async (req, res) => {
    await readBody(req);
    res.end('ok');
  });
  const started = await startApp(t, upstream.url);
  const client = new Client(started.url, { pipelining: 4 });
  t.after(() => client.close());
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      client
        .request({ path: `/bookings/b/${i}`, method: 'POST', body: `{"n":${i}}` })
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode;
        }),
    ),
  );
  assert.deepEqual(answers, Array(8).fill(200));
  for (let i = 0; i < 8; i++) {
    const line = await started.waitForLog(
      (l) => l.msg === 'request' && (l.req as { url: string }).url === `/bookings/b/${i}`,
    );
    assert.equal((line.req as { remote: string }).remote, '127.0.0.1');
  }
  assert.ok(!started.logs.some((l) => l.msg === 'request handler failed'));
});
