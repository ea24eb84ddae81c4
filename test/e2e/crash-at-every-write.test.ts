// A crash right after any store write of a booking's life loses no notification (SPEC "Outbound": the
// pending notification is in the store before the new snapshot is, so no crash between "feed changed" and
// "peers notified" loses it). The companion of kill-durability.test.ts: some windows between two writes
// (journal → snapshot, outbox → journal entry done) last microseconds, which random kills do not hit; here
// the app is crashed at each write boundary in turn, and a second app on the store left behind restarts and
// must notify the booking, then its cancellation (what a crash leaves must not cost a later change either).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { changeLogNamespace } from '../../src/feeds/change-log.ts';
import { outboxNamespace } from '../../src/push/notifier.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createCrashStore, type StoreWrite } from '../helpers/crash-store.ts';
import { startServer } from '../helpers/servers.ts';
import { dayFromNow, staysCalendar } from '../helpers/calendars.ts';

const today = Date.now();
const day = (offset: number) => dayFromNow(offset, today);

const stays = [{ uid: 'stay@test', start: day(35), end: day(38) }];
const booking = { uid: 'booking@test', start: day(50), end: day(53) };
// The app that crashes and the one that restarts sign their HEADs apart.
const firstAgent = 'iPP/0.1-first';
const secondAgent = 'iPP/0.1-second';

type Head = { listing: string; at: number; userAgent: string };

async function startWorld(t: TestContext) {
  const feeds = new Map<string, string>();
  const upstream = await startServer(t, (req, res) => {
    const listing = /^\/calendar\/([^/?]+)\.ics/.exec(req.url ?? '')?.[1];
    const text = listing === undefined ? undefined : feeds.get(listing);
    if (text === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(text);
  });
  const heads: Head[] = [];
  const headed = new EventEmitter();
  const peer = await startServer(t, (req, res) => {
    const listing = /^\/ical\/([^/?]+)\.ics/.exec(req.url ?? '')?.[1] ?? '';
    if (req.method === 'HEAD') {
      heads.push({ listing, at: performance.now(), userAgent: String(req.headers['user-agent'] ?? '') });
      headed.emit('head');
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end();
      return;
    }
    // The peer's calendar never shows the booking made here: it is a primary change.
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' })
      .end(staysCalendar([{ uid: `${listing}-peer@test`, start: day(30), end: day(32) }]));
  });

  /** Resolves once a HEAD for `listing` that `counts` accepts reached the peer; rejects after 5 s. */
  function head(listing: string, counts: (head: Head) => boolean, where: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        headed.off('head', check);
        reject(new Error(`no HEAD reached the peer: ${where}; HEADs: ${JSON.stringify(heads)}`));
      }, 5_000);
      function check() {
        if (!heads.some((h) => h.listing === listing && counts(h))) return;
        clearTimeout(timer);
        headed.off('head', check);
        resolve();
      }
      headed.on('head', check);
      check();
    });
  }

  const overrides = (listing: string, userAgent: string): Partial<ConfigInput> => ({
    listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${listing}.ics`, notify: true }] } },
    push: { watch: 0, userAgent },
    hooks: { enabled: false },
    timeouts: { shutdown: '300ms' },
  });
  return { feeds, heads, head, overrides, upstream };
}

async function getFeed(app: TestApp, listing: string): Promise<void> {
  const res = await request(`${app.url}/calendar/${listing}.ics`);
  await res.body.dump();
  assert.equal(res.statusCode, 200);
}

async function count(store: Store, namespace: string): Promise<number> {
  let n = 0;
  for await (const _entry of store.namespace(namespace).entries()) n += 1;
  return n;
}

/** Resolves once the app has nothing left to do for `listing`: changes processed, outbox and journal empty. */
async function quiet(app: TestApp, store: Store, listing: string, where: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    await app.app.feeds.settled();
    const pending = ((await app.app.push.status())[listing] as { pending: unknown[] }).pending.length;
    const journal = await count(store, changeLogNamespace);
    const outbox = await count(store, outboxNamespace);
    if (pending === 0 && journal === 0 && outbox === 0) return;
    if (performance.now() > deadline) {
      assert.fail(`${where}: not settled: ${pending} pending, ${journal} journaled, ${outbox} in the outbox`);
    }
    await sleep(10);
  }
}

test('a crash right after any store write of a booking\'s life loses neither its notification nor a later one',
  { timeout: 120_000 },
  async (t) => {
    const world = await startWorld(t);

    /** A sidecar on a fresh store reads the listing, then sees the booking; crashes after `crashAfter` writes. */
    async function bookingLife(listing: string, crashAfter: number | undefined): Promise<StoreWrite[]> {
      const where = `listing ${listing}, crash after write ${crashAfter ?? 'never'}`;
      const base = await openStore('memory');
      const crash = createCrashStore(base);
      world.feeds.set(listing, staysCalendar(stays));
      const first = await startApp(t, world.upstream.url, world.overrides(listing, firstAgent), crash.store);
      await getFeed(first, listing);
      await first.app.feeds.settled();
      const from = crash.writes.length;

      crash.crashAfter(crashAfter ?? Infinity);
      world.feeds.set(listing, staysCalendar([...stays, booking]));
      const bookedAt = performance.now();
      const reading = new AbortController();
      const read = request(`${first.url}/calendar/${listing}.ics`, { signal: reading.signal })
        .then((res) => res.body.dump()).catch(() => undefined);
      if (crashAfter === undefined) {
        await read;
        await world.head(listing, (h) => h.at > bookedAt, where);
        await quiet(first, base, listing, where);
        await first.app.close();
        return crash.writes.slice(from);
      }
      const late = new AbortController();
      const crashedAt = await Promise.race([crash.crashed, sleep(5_000, undefined, { signal: late.signal }).then(() => {
        throw new Error(`${where}: the booking made only ${crash.writes.length - from} writes`);
      })]);
      late.abort();
      reading.abort();
      await read;
      await first.app.close();

      // The restarted sidecar reads the feed (as its watch would) and must notify unless the crashed one did
      // before it crashed; what the crashed one still does in memory afterwards does not count.
      const second = await startApp(t, world.upstream.url, world.overrides(listing, secondAgent), base);
      await getFeed(second, listing);
      await world.head(listing, (h) => h.at > bookedAt
        && (h.userAgent.startsWith(`${secondAgent} `) || h.at < crashedAt), where);
      await quiet(second, base, listing, where);
      // What the crash left must not cost a later change its notification: the booking is cancelled.
      world.feeds.set(listing, staysCalendar(stays));
      const cancelledAt = performance.now();
      await getFeed(second, listing);
      await world.head(listing, (h) => h.at > cancelledAt, `${where}, then the cancellation`);
      await quiet(second, base, listing, where);
      await second.app.close();
      return crash.writes.slice(from, from + crashAfter);
    }

    const life = await bookingLife('uncrashed', undefined);
    const names = life.map((w) => `${w.op} ${w.namespace}`);
    t.diagnostic(`writes of a booking's life: ${names.join(', ')}`);
    // Write-ahead (SPEC "Outbound"): the journal entry before the snapshot, the outbox entry before the
    // journal entry goes, the outbox entry gone only once the peer answered.
    const at = (name: string) => names.indexOf(name);
    assert.ok(at('set feed_changes') !== -1, names.join(', '));
    assert.ok(at('set feed_changes') < at('set feed_history'), names.join(', '));
    assert.ok(at('set push_outbox') < at('delete feed_changes'), names.join(', '));
    assert.ok(at('delete feed_changes') < names.lastIndexOf('delete push_outbox'), names.join(', '));

    for (let n = 0; n < life.length; n += 1) {
      const before = await bookingLife(`crash-${n}`, n);
      assert.deepEqual(before, life.slice(0, n), `crash after write ${n}: the writes before it differ`);
    }
  });
