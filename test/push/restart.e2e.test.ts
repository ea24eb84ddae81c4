// Outbound push across a sidecar restart, through the whole app (createApp) on 127.0.0.1: a
// notification to a peer that is down is retried, kept in the sqlite outbox when the sidecar stops,
// and delivered once by the next sidecar on the same store when the peer is back; a peer that
// fails forever is retried for push.retryFor (on a fake clock), then given up on.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/network.ts';
import { closedPort, startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';
import { dayFromNow, staysCalendar } from '../helpers/calendars.ts';

const listing = 'beach-house';

const day = (offset: number) => dayFromNow(offset);

/** A fake platform serving `feed.text` as the listing's export. */
async function startUpstream(t: TestContext, text: string) {
  const feed = { text };
  const server = await startServer(t, (req, res) => {
    if (req.url?.split('?')[0] === `/calendar/${listing}.ics`) {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed.text);
      return;
    }
    res.writeHead(404).end();
  });
  return { url: server.url, feed };
}

/** Serves `handler` on 127.0.0.1:`port` exactly (the port a peer URL already names); closed at teardown. */
async function listenOn(
  t: TestContext,
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<void> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

type PendingJson = { name: string; url: string; attempts: number; dueAt: number; lastError?: string };
type PeerJson = { name: string; lastNotification?: string; lastError?: unknown };
type ListingJson = { pending: PendingJson[]; peers: PeerJson[] };
type StatusJson = { push: Record<string, ListingJson> };

async function statusOf(sidecar: string): Promise<ListingJson> {
  const res = await request(`${sidecar}/_icalpush/status`);
  assert.equal(res.statusCode, 200);
  const status = await res.body.json() as StatusJson;
  const entry = status.push[listing];
  assert.ok(entry, JSON.stringify(status.push));
  return entry;
}

async function pendingOf(sidecar: string): Promise<PendingJson[]> {
  return (await statusOf(sidecar)).pending;
}

/** The value of icalpush_push_notifications_total for `outcome` (0 when the series is absent). */
async function notifications(sidecar: string, outcome: string): Promise<number> {
  const text = await (await request(`${sidecar}/_icalpush/metrics`)).body.text();
  const match = new RegExp(`^icalpush_push_notifications_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** Resolves when the async `check` is true, polling every 20 ms; rejects after `ms`. */
async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The first log line of `sidecar` with message `msg` that `match` accepts; rejects naming it after `ms`. */
async function logLine(
  sidecar: TestApp,
  msg: string,
  match: (line: Record<string, unknown>) => boolean = () => true,
  ms = 5_000,
): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no log line "${msg}" within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([sidecar.waitForLog((l) => l.msg === msg && match(l)), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function getFeed(sidecar: string): Promise<void> {
  const res = await request(`${sidecar}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

test('a notification to a peer that is down is retried, survives a restart, and is delivered once', { timeout: 15_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'icalpush-restart-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const storePath = join(dir, 'state.db');
    const stays = [{ uid: 'first@test', start: day(10), end: day(12) }];
    const upstream = await startUpstream(t, staysCalendar(stays));
    // Nothing listens on the peer's port until the first sidecar is gone.
    const peerPort = await closedPort();
    const peerPath = `/calendar/${listing}.ics?s=peer-secret`;
    const overrides: Partial<ConfigInput> = {
      listings: {
        [listing]: { peers: [{ name: 'peer', url: `http://127.0.0.1:${peerPort}${peerPath}`, notify: true }] },
      },
      push: { watch: 0 },
    };

    const first = await startApp(t, upstream.url, overrides, await openStore(storePath));
    const classified = (kind: string) => logLine(first, 'listing change classified', (l) => l.kind === kind);
    // The state before the booking, then the booking: a primary change of the listing's own feed.
    await getFeed(first.url);
    await classified('no-night-change');
    upstream.feed.text = staysCalendar([...stays, { uid: 'second@test', start: day(20), end: day(23) }]);
    await getFeed(first.url);
    const primary = await classified('primary');
    assert.deepEqual(primary.notified, ['peer']);

    // Tried, refused by the closed port, and waiting for its retry.
    const retried = await logLine(first, 'push notification will be retried');
    assert.equal(retried.attempts, 1);
    assert.ok(await notifications(first.url, 'retried') >= 1);
    assert.equal(await notifications(first.url, 'sent'), 0);
    const pending = await pendingOf(first.url);
    assert.equal(pending.length, 1, JSON.stringify(pending));
    assert.equal(pending[0]?.name, 'peer');
    assert.ok((pending[0]?.attempts ?? 0) >= 1, JSON.stringify(pending));
    assert.equal(pending[0]?.lastError, 'UPSTREAM_UNREACHABLE');
    assert.equal(retried.cause, 'ECONNREFUSED');
    // The status redacts the peer URL's secret.
    assert.doesNotMatch(JSON.stringify(pending), /peer-secret/);
    await first.app.close();

    // The peer comes back on its port; the sidecar comes back on the same store.
    const heads: Array<{ method: string; path: string; userAgent: string }> = [];
    await listenOn(t, peerPort, (req, res) => {
      if (req.method === 'HEAD') {
        heads.push({ method: req.method, path: req.url ?? '', userAgent: req.headers['user-agent'] ?? '' });
      }
      res.writeHead(200, { 'content-type': 'text/calendar' }).end(req.method === 'HEAD' ? undefined : staysCalendar([]));
    });
    const second = await startApp(t, upstream.url, overrides, await openStore(storePath));
    const resumed = await logLine(second, 'push outbox resumed');
    assert.equal(resumed.pending, 1);
    await eventually(() => heads.length >= 1);
    assert.equal(heads[0]?.method, 'HEAD');
    assert.equal(heads[0]?.path, peerPath);
    assert.match(heads[0]?.userAgent ?? '', /^iPP\/0\.1 icalpush\//);
    const sent = await logLine(second, 'push notification sent');
    assert.equal(sent.reason, 'primary change');
    assert.ok(Number(sent.attempts) >= 2, JSON.stringify(sent));
    await until(async () => (await pendingOf(second.url)).length === 0);
    assert.equal(await notifications(second.url, 'sent'), 1);
    assert.equal(await notifications(second.url, 'retried'), 0);
    // Operators see the delivery on the peer itself.
    const [peerStatus] = (await statusOf(second.url)).peers;
    assert.equal(peerStatus?.name, 'peer');
    assert.ok(Date.parse(peerStatus?.lastNotification ?? '') > 0, JSON.stringify(peerStatus));
    await second.app.close();

    // Delivered means gone from the store too: a third start has nothing to resume or resend.
    const third = await startApp(t, upstream.url, overrides, await openStore(storePath));
    assert.deepEqual(await pendingOf(third.url), []);
    assert.equal(third.logs.filter((l) => l.msg === 'push outbox resumed').length, 0);
    assert.equal(heads.length, 1, JSON.stringify(heads));
  });

test('a peer answering 503 forever is retried with growing delays for push.retryFor, then the notification is dropped',
  { timeout: 15_000 }, async (t) => {
    const clock = createFakeClock(Date.now());
    const heads: number[] = [];
    const headed = new EventEmitter();
    const peer = await startServer(t, (req, res) => {
      if (req.method === 'HEAD') {
        heads.push(clock.now());
        headed.emit('head');
      }
      res.writeHead(503).end();
    });
    /** Resolves once the peer has had `n` HEADs. */
    const head = (n: number) => new Promise<void>((resolve) => {
      const check = () => {
        if (heads.length < n) return;
        headed.off('head', check);
        resolve();
      };
      headed.on('head', check);
      check();
    });
    const upstream = await startUpstream(t, staysCalendar([{ uid: 'stay@test', start: day(10), end: day(12) }]));
    const retryFor = 30 * 60_000;
    const sidecar = await startApp(t, upstream.url, {
      listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/feed.ics`, notify: true }] } },
      push: { watch: 0, retryFor: '30m' },
    }, undefined, clock);
    const res = await request(`${sidecar.url}/_icalpush/listings/${listing}/changed`, { method: 'POST' });
    assert.equal(res.statusCode, 202);
    await res.body.dump();

    // Fake time: each step moves the clock to the pending notification's due time, once the notifier
    // has armed its timer, and waits for the HEAD it sends and for what the notifier made of the answer.
    const outcome = (l: Record<string, unknown>) => l.msg === 'push notification will be retried'
      || l.msg === 'push notification dropped after last attempt';
    for (let attempt = 1; ; attempt += 1) {
      const [next] = await pendingOf(sidecar.url);
      assert.ok(next, `attempt ${attempt} is pending`);
      await clock.whenTimerAt(next.dueAt);
      clock.advance(next.dueAt - clock.now());
      await head(attempt);
      const line = await sidecar.waitForLog((l) => outcome(l) && l.attempts === attempt);
      if (line.msg === 'push notification dropped after last attempt') break;
    }

    const dropped = await logLine(sidecar, 'push notification dropped after last attempt');
    assert.equal(dropped.attempts, heads.length);
    assert.equal(dropped.retriedForMs, retryFor);
    assert.equal(dropped.error, 'status 503');
    const delays = sidecar.logs
      .filter((l) => l.msg === 'push notification will be retried')
      .map((l) => Number(l.delayMs));
    assert.equal(delays.length, heads.length - 1);
    assert.ok(delays.length > 8, JSON.stringify(delays));
    // Equal jitter on a doubling base of 1 s: each delay at least the one before until the 5 min cap
    // (reached from the 10th), none past it; the last one is cut short by the deadline.
    assert.ok((delays[0] ?? 0) >= 500, JSON.stringify(delays));
    const growing = delays.every((ms, i) => ms <= 300_000 && (i === 0 || i >= 9 || ms >= (delays[i - 1] ?? 0)));
    assert.ok(growing, JSON.stringify(delays));
    assert.deepEqual(heads.slice(1).map((at, i) => at - (heads[i] ?? 0)), delays);
    assert.deepEqual(await pendingOf(sidecar.url), []);
    assert.equal(await notifications(sidecar.url, 'retried'), heads.length - 1);
    assert.equal(await notifications(sidecar.url, 'dropped'), 1);
    assert.equal(await notifications(sidecar.url, 'sent'), 0);
  });
