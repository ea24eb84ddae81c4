// Regression: a peer down for 150 s after a booking got 8 attempts over 64–127 s and was then dropped:
// never told. A notification is now retried for push.retryFor (default 24 h), backoff capped at 5 min.
// Through the real app on a fake clock: time moves only when the test says, the HEADs are real.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

type Pending = { dueAt: number; attempts: number };

test('a peer down for 150 s after a booking is told once it is back, within the backoff cap', async (t) => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf(stay('a', '20270110', '20270112')));
  });
  const bookedAt = clock.now();
  const answers: number[] = [];
  let arrived = Promise.withResolvers<void>();
  const peer = await startServer(t, (req, res) => {
    if (req.method !== 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf());
      return;
    }
    const status = clock.now() - bookedAt < 150_000 ? 503 : 200;
    answers.push(status);
    res.writeHead(status).end();
    arrived.resolve();
  });
  const app = await startApp(t, upstream.url, {
    listings: { x: { peers: [{ name: 'peer', url: `${peer.url}/x.ics` }] } },
    push: { watch: 0 },
  }, undefined, clock);

  const changed = await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  assert.equal(changed.statusCode, 202);
  await changed.body.dump();
  const pending = async (): Promise<Pending | undefined> => {
    const status = await (await request(`${app.url}/_icalpush/status`)).body.json() as
      { push: Record<string, { pending: Pending[] }> };
    return status.push.x?.pending[0];
  };
  for (let attempt = 1; attempt <= 40; attempt += 1) {
    const next = await pending();
    if (!next) break;
    // Move to the attempt once the notifier has armed its timer for it, then wait for the HEAD.
    await clock.whenTimerAt(next.dueAt);
    arrived = Promise.withResolvers<void>();
    clock.advance(Math.max(0, next.dueAt - clock.now()));
    await arrived.promise;
    await app.waitForLog((l) => (l.msg === 'push notification will be retried' && l.attempts === attempt)
      || l.msg === 'push notification sent');
  }
  assert.equal(answers.at(-1), 200, `answers: ${answers.join(',')}`);
  assert.equal(answers.filter((s) => s === 200).length, 1);
  assert.ok(answers.length > 8, 'more attempts than the old limit of 8');
  assert.ok(clock.now() - bookedAt < 150_000 + 5 * 60_000, 'told within one capped backoff of coming back');
  assert.equal(await pending(), undefined);
  assert.ok(!app.logs.some((l) => l.msg === 'push notification dropped after last attempt'));
});
