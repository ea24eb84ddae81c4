// Outbound iPP notifications against real fake peers on 127.0.0.1: the HEAD itself, coalescing,
// retries and their bounds, the durable outbox across a restart, and the concurrency bound.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Clock, systemClock } from '../../src/clock.ts';
import { createLogger } from '../../src/log.ts';
import { createRegistry, type Registry } from '../../src/metrics/registry.ts';
import {
  createNotifier, type NotifierOptions, notificationsMetricName, outboxNamespace, pendingMetricName,
} from '../../src/push/notifier.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { closedPort, readBody, startServer } from '../helpers/servers.ts';

type LogLine = { level: string; msg: string; [field: string]: unknown };

/** A debug-level logger whose lines tests can read back and wait for. */
function captureLogs() {
  const lines: LogLine[] = [];
  const waiters: Array<{ msg: string; seen: number; resolve: (line: LogLine) => void }> = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write(text: string) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (line.msg !== waiter.msg) continue;
          waiter.seen -= 1;
          if (waiter.seen > 0) continue;
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      },
    },
  });
  return {
    logger,
    lines,
    raw: () => lines.map((line) => JSON.stringify(line)).join('\n'),
    /** Resolves with the `nth` line (counting those already logged) whose message is `msg`. */
    next(msg: string, nth = 1): Promise<LogLine> {
      const already = lines.filter((line) => line.msg === msg);
      if (already.length >= nth) return Promise.resolve(already[nth - 1] as LogLine);
      return new Promise((resolve) => waiters.push({ msg, seen: nth - already.length, resolve }));
    },
  };
}

function counterValue(registry: Registry, name: string, label?: string): number {
  const family = registry.collect().find((f) => f.name === name);
  if (family === undefined || family.type === 'histogram') return 0;
  const series = family.series.find((s) => label === undefined || s.labelValues[0] === label);
  return series?.value ?? 0;
}

async function memoryStore(t: TestContext): Promise<Store> {
  const store = await openStore('memory');
  t.after(() => store.close());
  return store;
}

type Setup = Partial<NotifierOptions> & { store: Store };

/** A started notifier with fast defaults, closed at teardown, and its logs and registry. */
async function setup(t: TestContext, options: Setup) {
  const logs = captureLogs();
  const registry = createRegistry();
  const notifier = createNotifier({
    clock: systemClock,
    logger: logs.logger,
    registry,
    userAgent: 'iPP/0.1',
    coalesceMs: 10,
    timeoutMs: 2_000,
    backoff: { baseMs: 5, maxMs: 20 },
    ...options,
  });
  t.after(() => notifier.close());
  await notifier.start();
  return { notifier, logs, registry };
}

/** A fake peer answering each HEAD with `answer(n)` (n counts from 1) and recording the requests. */
async function startPeer(t: TestContext, answer: (n: number, req: IncomingMessage, res: ServerResponse) => void) {
  const requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];
  const peer = await startServer(t, (req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      answer(requests.length, req, res);
    });
  });
  return { ...peer, requests };
}

const status = (code: number, headers: Record<string, string> = {}) =>
  (_n: number, _req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, headers).end();
  };

test('a notification is one HEAD to the configured URL, without a body, with the iPP User-Agent', async (t) => {
  const peer = await startPeer(t, status(200));
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t) });
  const url = `${peer.url}/calendar/listing-x.ics?s=secret-token&lang=en`;
  await notifier.notify([{ listing: 'x', name: 'airbnb', url }], 'booking');
  const sent = await logs.next('push notification sent');

  assert.equal(peer.requests.length, 1);
  const [req] = peer.requests;
  assert.equal(req?.method, 'HEAD');
  assert.equal(req?.url, '/calendar/listing-x.ics?s=secret-token&lang=en');
  assert.equal(req?.body.length, 0);
  assert.equal(req?.headers['content-length'], undefined);
  assert.equal(req?.headers['transfer-encoding'], undefined);
  assert.match(req?.headers['user-agent'] ?? '', /^iPP\/0\.1 icalpush\//);
  assert.equal(sent.listing, 'x');
  assert.equal(sent.peer, 'airbnb');
  assert.equal(sent.status, 200);
  assert.equal(sent.attempts, 1);
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(counterValue(registry, notificationsMetricName, 'sent'), 1);
  assert.equal(typeof notifier.peerState('x')[url]?.lastNotifiedAt, 'number');
});

test('logs and pending() never show the peer URL\'s query secret', async (t) => {
  const peer = await startPeer(t, status(404));
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), coalesceMs: 200 });
  const url = `${peer.url}/calendar/listing-x.ics?s=secret-token`;
  await notifier.notify([{ listing: 'x', name: 'vrbo', url }], 'booking');
  const [pending] = await notifier.pending('x');
  assert.equal(pending?.url, `${peer.url}/calendar/listing-x.ics?s=[REDACTED]`);
  await logs.next('push notification refused by peer');
  assert.doesNotMatch(logs.raw(), /secret-token/);
});

test('two notify() calls within the coalescing window give one HEAD', async (t) => {
  const peer = await startPeer(t, status(204));
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), coalesceMs: 100 });
  const target = { listing: 'x', name: 'booking', url: `${peer.url}/x.ics` };
  await notifier.notify([target], 'first');
  await notifier.notify([target], 'second');
  assert.equal((await notifier.pending()).length, 1);
  await logs.next('push notification sent');
  // Nothing is pending any more, so no second HEAD can follow.
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(peer.requests.length, 1);
});

test('a notify() while the HEAD is in flight sends one more HEAD after it', async (t) => {
  const { promise: held, resolve: hold } = Promise.withResolvers<() => void>();
  const peer = await startPeer(t, (n, _req, res) => {
    if (n === 1) hold(() => res.writeHead(200).end());
    else res.writeHead(200).end();
  });
  const { notifier, logs } = await setup(t, { store: await memoryStore(t) });
  const target = { listing: 'x', name: 'booking', url: `${peer.url}/x.ics` };
  await notifier.notify([target], 'first');
  const release = await held;
  await notifier.notify([target], 'second');
  release();
  await logs.next('push notification sent', 2);
  assert.equal(peer.requests.length, 2);
  assert.deepEqual(await notifier.pending(), []);
});

test('a peer answering 503 twice then 200 gets three HEADs and nothing stays pending', async (t) => {
  const peer = await startPeer(t, (n, _req, res) => res.writeHead(n <= 2 ? 503 : 200).end());
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t) });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const sent = await logs.next('push notification sent');
  assert.equal(peer.requests.length, 3);
  assert.equal(sent.attempts, 3);
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), 2);
  assert.equal(counterValue(registry, notificationsMetricName, 'sent'), 1);
});

test('Retry-After on a 503 sets the next attempt, capped by the backoff maximum', async (t) => {
  const peer = await startPeer(t, status(503, { 'retry-after': '120' }));
  const { notifier, logs } = await setup(t, {
    store: await memoryStore(t),
    backoff: { baseMs: 5, maxMs: 60_000 },
  });
  const before = Date.now();
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  await logs.next('push notification will be retried');
  const [pending] = await notifier.pending();
  assert.equal(pending?.attempts, 1);
  assert.equal(pending?.lastError, 'status 503');
  assert.ok(pending !== undefined && pending.dueAt >= before + 60_000 && pending.dueAt <= Date.now() + 60_000);
});

test('a 404 is not retried', async (t) => {
  const peer = await startPeer(t, status(404));
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t) });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const refused = await logs.next('push notification refused by peer');
  assert.equal(refused.status, 404);
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(peer.requests.length, 1);
  assert.equal(counterValue(registry, notificationsMetricName, 'failed'), 1);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), 0);
  assert.equal(notifier.peerState('x')[`${peer.url}/x.ics`]?.lastError?.reason, 'status 404');
});

test('a peer that is down is retried up to maxAttempts, then dropped', async (t) => {
  const port = await closedPort();
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t), maxAttempts: 3 });
  await notifier.notify([{ listing: 'x', name: 'down', url: `http://127.0.0.1:${port}/x.ics?s=k` }], 'booking');
  const dropped = await logs.next('push notification dropped after last attempt');
  assert.equal(dropped.level, 'error');
  assert.equal(dropped.attempts, 3);
  assert.equal(dropped.error, 'ECONNREFUSED');
  assert.equal(dropped.host, `127.0.0.1:${port}`);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), 2);
  assert.equal(counterValue(registry, notificationsMetricName, 'dropped'), 1);
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(notifier.peerState('x')[`http://127.0.0.1:${port}/x.ics?s=k`]?.lastError?.reason, 'ECONNREFUSED');
});

test('a peer that does not answer within timeoutMs counts as a failed attempt', async (t) => {
  const peer = await startPeer(t, () => {}); // holds every request; the server teardown resets them
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), timeoutMs: 100, maxAttempts: 1 });
  await notifier.notify([{ listing: 'x', name: 'slow', url: `${peer.url}/x.ics` }], 'booking');
  const dropped = await logs.next('push notification dropped after last attempt');
  assert.equal(dropped.error, 'timeout');
  assert.equal(peer.requests.length, 1);
});

test('a pending notification survives closing the notifier and the store, and is sent after restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-notifier-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'state.db');
  let up = false;
  const peer = await startPeer(t, (_n, _req, res) => res.writeHead(up ? 200 : 503).end());
  const target = { listing: 'x', name: 'peer', url: `${peer.url}/x.ics?s=k` };

  const first = await openStore(path);
  const before = await setup(t, { store: first, backoff: { baseMs: 60_000, maxMs: 60_000 } });
  await before.notifier.notify([target], 'booking');
  await before.logs.next('push notification will be retried');
  await before.notifier.close();
  await first.close();
  assert.equal(peer.requests.length, 1);

  up = true;
  const second = await openStore(path);
  t.after(() => second.close());
  // Two minutes later: the stored retry is past its dueAt and goes out at once.
  const later: Clock = { ...systemClock, now: () => Date.now() + 120_000 };
  const after = await setup(t, { store: second, clock: later });
  const sent = await after.logs.next('push notification sent');
  assert.equal(sent.attempts, 2);
  assert.equal(peer.requests.length, 2);
  assert.equal(peer.requests[1]?.url, '/x.ics?s=k');
  assert.deepEqual(await after.notifier.pending(), []);
  const left = [];
  for await (const entry of second.namespace(outboxNamespace).entries()) left.push(entry);
  assert.deepEqual(left, []);
});

test('at most `concurrency` HEADs are in flight at once', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const peer = await startPeer(t, (_n, _req, res) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight -= 1;
      res.writeHead(200).end();
    }, 30);
  });
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), concurrency: 4 });
  const targets = Array.from({ length: 20 }, (_, i) => ({ listing: `l${i}`, name: 'peer', url: `${peer.url}/${i}.ics` }));
  await notifier.notify(targets, 'booking');
  await logs.next('push notification sent', 20);
  assert.equal(peer.requests.length, 20);
  assert.equal(maxInFlight, 4);
  assert.deepEqual(await notifier.pending(), []);
});

test('close() leaves pending notifications in the store and sends nothing more', async (t) => {
  const peer = await startPeer(t, status(200));
  const store = await memoryStore(t);
  const { notifier, registry } = await setup(t, { store, coalesceMs: 60_000 });
  const url = `${peer.url}/x.ics?s=k`;
  await notifier.notify([{ listing: 'x', name: 'peer', url }, { listing: 'y', name: 'peer', url }], 'booking');
  assert.equal(counterValue(registry, pendingMetricName), 2);
  await notifier.close();
  const left: Array<{ listing: string; url: string; attempts: number }> = [];
  for await (const [, value] of store.namespace(outboxNamespace).entries<(typeof left)[number]>()) left.push(value);
  assert.deepEqual(left.map((e) => [e.listing, e.url, e.attempts]).sort(), [['x', url, 0], ['y', url, 0]]);
  assert.equal(peer.requests.length, 0);
  await assert.rejects(notifier.notify([{ listing: 'x', name: 'peer', url }], 'late'), { code: 'SHUTTING_DOWN' });
});

test('past maxPending new notifications are refused with an error line and a metric', async (t) => {
  const { notifier, logs, registry } = await setup(t, {
    store: await memoryStore(t),
    coalesceMs: 60_000,
    maxPending: 2,
  });
  const targets = [1, 2, 3].map((i) => ({ listing: 'x', name: `p${i}`, url: `http://127.0.0.1:9/${i}.ics` }));
  await notifier.notify(targets, 'booking');
  assert.equal((await notifier.pending('x')).length, 2);
  assert.equal(counterValue(registry, notificationsMetricName, 'refused'), 1);
  assert.equal((await logs.next('push notification refused: outbox full')).peer, 'p3');
});
