// Regression: a kill -9 between "snapshot written" and "outbox written" (a peer read was slow) lost the
// notification for good: after the restart the snapshot already had the new version and nothing was
// classified. The change is now journaled before its snapshot (feeds/change-log.ts) and processed again on
// start. The crash is the store refusing every write from the instant the new snapshot is written on
// (nothing after that point reaches the disk); the real kill -9 test is test/e2e/kill-durability.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { changeLogNamespace } from '../../src/feeds/change-log.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startApp } from '../helpers/app.ts';
import { createCrashStore } from '../helpers/crash-store.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { startServer } from '../helpers/servers.ts';
import { dayFromNow } from '../helpers/calendars.ts';

const day = (offset: number) => dayFromNow(offset);

test('a crash right after the new snapshot is written still notifies the peer after the restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'icalpush.db');
  const feed = { text: calendarOf(stay('a', day(30), day(33))) };
  const upstream = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/calendar' }).end(feed.text));
  const heads: number[] = [];
  const notified = Promise.withResolvers<void>();
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(Date.now());
      notified.resolve();
      res.writeHead(200).end();
      return;
    }
    // Slow: classification re-reads the peer first, so the outbox is written well after the snapshot.
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf()), 300);
  });
  const config: Partial<ConfigInput> = {
    listings: { x: { peers: [{ name: 'peer', url: `${peer.url}/x.ics` }] } },
    push: { watch: 0 },
  };

  const real = await openStore(path);
  const crash = createCrashStore(real, { reject: true });
  const first = await startApp(t, upstream.url, config, crash.store);
  await (await request(`${first.url}/calendar/x.ics`)).body.dump();
  // The next snapshot written is the last write to land.
  crash.crashAfterNext('feed_history', 'set');
  feed.text = calendarOf(stay('a', day(30), day(33)), stay('b', day(40), day(44)));
  await (await request(`${first.url}/calendar/x.ics`)).body.dump();
  // The journal holds the change; the outbox never got it.
  await first.waitForLog((l) => l.msg === 'feed snapshot not applied');
  await first.app.close();
  await real.close();
  assert.equal(heads.length, 0, 'no HEAD went out before the crash');
  const stored = await openStore(path);
  const journal: unknown[] = [];
  for await (const entry of stored.namespace(changeLogNamespace).entries()) journal.push(entry);
  assert.equal(journal.length, 1, 'the change was journaled before the snapshot');

  const second = await startApp(t, upstream.url, config, stored);
  const late = AbortSignal.timeout(15_000);
  await Promise.race([notified.promise, new Promise((_, reject) => late.addEventListener('abort',
    () => reject(new Error('the peer was never notified after the restart'))))]);
  await second.waitForLog((l) => l.msg === 'feed change recovered: processing it again');
  assert.equal(heads.length, 1);
  const classified = await second.waitForLog((l) => l.msg === 'listing change classified');
  assert.equal(classified.kind, 'primary');
});
