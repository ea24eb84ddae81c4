// Outbound iPP notifications against real fake peers on 127.0.0.1: the HEAD itself, coalescing,
// retries for retryFor on a fake clock (backoff, Retry-After, the deadline), the durable outbox across
// a restart, the concurrency bound and close().
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Clock, systemClock } from '../../src/clock.ts';
import { createOutboundClient } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { createRegistry, type Registry } from '../../src/metrics/registry.ts';
import {
  createNotifier, type Notifier, type NotifierOptions, notificationsMetricName, outboxNamespace, pendingMetricName,
} from '../../src/push/notifier.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { closedPort, readBody, startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

type LogLine = { level: string; msg: string; [field: string]: unknown };

/** A debug-level logger whose lines tests can read back and wait for. */
function captureLogs() {
  const lines: LogLine[] = [];
  const written = new EventEmitter();
  const logger = createLogger({
    level: 'debug',
    destination: {
      write(text: string) {
        lines.push(JSON.parse(text) as LogLine);
        written.emit('line');
      },
    },
  });
  return {
    logger,
    lines,
    raw: () => lines.map((line) => JSON.stringify(line)).join('\n'),
    /** Resolves with the `nth` line (counting those already logged) whose message is `msg` (or one of them). */
    next(msg: string | readonly string[], nth = 1): Promise<LogLine> {
      const wanted = typeof msg === 'string' ? [msg] : msg;
      return new Promise((resolve) => {
        const check = () => {
          const found = lines.filter((line) => wanted.includes(line.msg))[nth - 1];
          if (found === undefined) return;
          written.off('line', check);
          resolve(found);
        };
        written.on('line', check);
        check();
      });
    },
  };
}

type Logs = ReturnType<typeof captureLogs>;

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

async function outboxOf(store: Store): Promise<unknown[]> {
  const left: unknown[] = [];
  for await (const [, value] of store.namespace(outboxNamespace).entries()) left.push(value);
  return left;
}

type Setup = Partial<NotifierOptions> & { store: Store };

/** A started notifier with fast defaults and its own outbound client, closed at teardown (notifier first). */
async function setup(t: TestContext, options: Setup) {
  const logs = captureLogs();
  const registry = createRegistry();
  const clock = options.clock ?? systemClock;
  const client = options.client ?? createOutboundClient({ clock, connectTimeoutMs: 2_000 });
  const notifier = createNotifier({
    clock,
    client,
    logger: logs.logger,
    registry,
    userAgent: 'iPP/0.1',
    coalesceMs: 10,
    timeoutMs: 2_000,
    backoff: { baseMs: 5, maxMs: 20 },
    ...options,
  });
  t.after(async () => {
    await notifier.close();
    if (options.client === undefined) await client.close();
  });
  await notifier.start();
  return { notifier, logs, registry };
}

type PeerRequest = { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer; at: number };

/**
 * A fake peer answering each HEAD with `answer(n)` (n counts from 1), recording each request with the
 * time of `clock` it arrived at; `received(n)` resolves once the nth request is in.
 */
async function startPeer(
  t: TestContext,
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void,
  clock: Clock = systemClock,
) {
  const requests: PeerRequest[] = [];
  const arrived = new EventEmitter();
  const peer = await startServer(t, (req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: clock.now() });
      answer(requests.length, req, res);
      arrived.emit('request');
    });
  });
  const received = (n: number) => new Promise<PeerRequest>((resolve) => {
    const check = () => {
      const request = requests[n - 1];
      if (request === undefined) return;
      arrived.off('request', check);
      resolve(request);
    };
    arrived.on('request', check);
    check();
  });
  return { ...peer, requests, received };
}

const status = (code: number, headers: Record<string, string> = {}) =>
  (_n: number, _req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, headers).end();
  };

const outcomeMessages = [
  'push notification will be retried',
  'push notification sent',
  'push notification refused by peer',
  'push notification dropped after last attempt',
] as const;

/**
 * One step of fake time: moves `clock` to the soonest pending notification, waits for `peer` (when
 * there is one) to receive that HEAD, then for what the notifier made of the answer.
 */
async function nextAttempt(
  clock: FakeClock,
  notifier: Notifier,
  logs: Logs,
  peer?: { requests: unknown[]; received(n: number): Promise<PeerRequest> },
): Promise<LogLine> {
  const [next] = await notifier.pending();
  assert.ok(next, 'a notification is pending');
  const outcomesSoFar = logs.lines.filter((line) => (outcomeMessages as readonly string[]).includes(line.msg)).length;
  const expected = (peer?.requests.length ?? 0) + 1;
  const dueAt = Math.max(next.dueAt, clock.now());
  await clock.whenTimerAt(dueAt);
  clock.advance(dueAt - clock.now());
  if (peer !== undefined) await peer.received(expected);
  return logs.next(outcomeMessages, outcomesSoFar + 1);
}

/** Runs attempts until the notification is sent, refused or dropped; returns every outcome line. */
async function untilSettled(
  clock: FakeClock,
  notifier: Notifier,
  logs: Logs,
  peer?: Parameters<typeof nextAttempt>[3],
) {
  const lines: LogLine[] = [];
  for (;;) {
    const line = await nextAttempt(clock, notifier, logs, peer);
    lines.push(line);
    if (line.msg !== 'push notification will be retried') return lines;
  }
}

const second = 1_000;
const minute = 60 * second;

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
  const clock = createFakeClock();
  const peer = await startPeer(t, status(404), clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock });
  const url = `${peer.url}/calendar/listing-x.ics?s=secret-token`;
  await notifier.notify([{ listing: 'x', name: 'vrbo', url }], 'booking');
  const [pending] = await notifier.pending('x');
  assert.equal(pending?.url, `${peer.url}/calendar/listing-x.ics?s=[REDACTED]`);
  assert.equal((await nextAttempt(clock, notifier, logs, peer)).msg, 'push notification refused by peer');
  assert.doesNotMatch(logs.raw(), /secret-token/);
});

test('two notify() calls within the coalescing window give one HEAD', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, status(204), clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock, coalesceMs: 100 });
  const target = { listing: 'x', name: 'booking', url: `${peer.url}/x.ics` };
  await notifier.notify([target], 'first');
  clock.advance(50);
  await notifier.notify([target], 'second');
  assert.equal((await notifier.pending()).length, 1);
  assert.equal((await nextAttempt(clock, notifier, logs, peer)).msg, 'push notification sent');
  assert.equal(peer.requests[0]?.at, clock.now());
  // Nothing is pending any more, so no second HEAD can follow.
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(peer.requests.length, 1);
});

test('a notify() while the HEAD is in flight sends one more HEAD after it', async (t) => {
  const clock = createFakeClock();
  const { promise: held, resolve: hold } = Promise.withResolvers<() => void>();
  const peer = await startPeer(t, (n, _req, res) => {
    if (n === 1) hold(() => res.writeHead(200).end());
    else res.writeHead(200).end();
  }, clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock });
  const target = { listing: 'x', name: 'booking', url: `${peer.url}/x.ics` };
  await notifier.notify([target], 'first');
  const first = nextAttempt(clock, notifier, logs, peer);
  const release = await held;
  await notifier.notify([target], 'second');
  release();
  assert.equal((await first).msg, 'push notification sent');
  assert.equal((await nextAttempt(clock, notifier, logs, peer)).msg, 'push notification sent');
  assert.equal(peer.requests.length, 2);
  assert.deepEqual(await notifier.pending(), []);
});

test('a peer answering 503 twice then 200 gets three HEADs and nothing stays pending', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, (n, _req, res) => res.writeHead(n <= 2 ? 503 : 200).end(), clock);
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t), clock, backoff: undefined });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const lines = await untilSettled(clock, notifier, logs, peer);
  assert.deepEqual(lines.map((l) => l.msg), [
    'push notification will be retried', 'push notification will be retried', 'push notification sent',
  ]);
  assert.equal(peer.requests.length, 3);
  assert.equal(lines[2]?.attempts, 3);
  assert.deepEqual(await notifier.pending(), []);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), 2);
  assert.equal(counterValue(registry, notificationsMetricName, 'sent'), 1);
});

test('a peer answering 503 for 150 s after a booking is notified once it answers again', async (t) => {
  const clock = createFakeClock();
  const bookedAt = clock.now();
  const peer = await startPeer(t, (_n, _req, res) => {
    res.writeHead(clock.now() - bookedAt < 150 * second ? 503 : 200).end();
  }, clock);
  const store = await memoryStore(t);
  // The production backoff: 1 s doubling to 5 min.
  const { notifier, logs, registry } = await setup(t, { store, clock, backoff: undefined });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics?s=k` }], 'booking');
  const lines = await untilSettled(clock, notifier, logs, peer);

  const sent = lines.at(-1);
  assert.equal(sent?.msg, 'push notification sent');
  assert.ok(Number(sent?.attempts) > 1, JSON.stringify(sent));
  assert.equal(peer.requests.filter((r) => r.at - bookedAt >= 150 * second).length, 1);
  assert.equal(peer.requests.length, sent?.attempts);
  assert.equal(counterValue(registry, notificationsMetricName, 'sent'), 1);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), Number(sent?.attempts) - 1);
  assert.equal(counterValue(registry, notificationsMetricName, 'dropped'), 0);
  assert.deepEqual(await notifier.pending(), []);
  await notifier.close(); // waits for the outbox write
  assert.deepEqual(await outboxOf(store), []);
});

test('a peer down for longer than retryFor is dropped once, at the deadline, and leaves the outbox', async (t) => {
  const clock = createFakeClock();
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}/x.ics?s=peer-secret`;
  const store = await memoryStore(t);
  const retryForMs = 10 * minute;
  const { notifier, logs, registry } = await setup(t, { store, clock, backoff: undefined, retryForMs });
  const queuedAt = clock.now();
  await notifier.notify([{ listing: 'x', name: 'down', url }], 'booking');
  const lines = await untilSettled(clock, notifier, logs);

  const dropped = lines.at(-1);
  assert.equal(dropped?.msg, 'push notification dropped after last attempt');
  assert.equal(lines.filter((l) => l.msg === 'push notification dropped after last attempt').length, 1);
  assert.equal(clock.now(), queuedAt + retryForMs, 'the last attempt is at the deadline');
  assert.equal(dropped.level, 'error');
  assert.equal(dropped.listing, 'x');
  assert.equal(dropped.peer, 'down');
  assert.equal(dropped.host, `127.0.0.1:${port}`);
  assert.equal(dropped.attempts, lines.length);
  assert.ok(lines.length > 2, JSON.stringify(lines.map((l) => l.delayMs)));
  assert.equal(dropped.retriedForMs, retryForMs);
  assert.equal(dropped.error, 'UPSTREAM_UNREACHABLE');
  assert.equal(dropped.cause, 'ECONNREFUSED');
  assert.equal(JSON.stringify(dropped).includes(url), false);
  assert.doesNotMatch(logs.raw(), /peer-secret/);
  assert.equal(counterValue(registry, notificationsMetricName, 'dropped'), 1);
  assert.equal(counterValue(registry, notificationsMetricName, 'retried'), lines.length - 1);
  assert.deepEqual(await notifier.pending(), []);
  await notifier.close(); // waits for the outbox write
  assert.deepEqual(await outboxOf(store), []);
  assert.equal(notifier.peerState('x')[url]?.lastError?.reason, 'UPSTREAM_UNREACHABLE');
  assert.equal(clock.pending(), 0);
});

test('a change while a notification is being retried restarts its retryFor from that change', async (t) => {
  const clock = createFakeClock();
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}/x.ics`;
  const retryForMs = 10 * minute;
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock, backoff: undefined, retryForMs });
  await notifier.notify([{ listing: 'x', name: 'down', url }], 'booking');
  // Two attempts fail, then a second booking joins the waiting notification.
  const queuedAt = clock.now();
  await nextAttempt(clock, notifier, logs);
  await nextAttempt(clock, notifier, logs);
  const joinedAt = clock.now();
  assert.ok(joinedAt > queuedAt);
  await notifier.notify([{ listing: 'x', name: 'down', url }], 'booking');
  assert.equal((await notifier.pending()).length, 1, 'coalesced into one notification');
  const lines = await untilSettled(clock, notifier, logs);
  assert.equal(lines.at(-1)?.msg, 'push notification dropped after last attempt');
  assert.equal(clock.now(), joinedAt + retryForMs, 'retried for retryFor from the later change');
});

test('backoff between attempts doubles from 1 s with equal jitter and never exceeds 5 min', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, status(503), clock);
  const { notifier, logs } = await setup(t, {
    store: await memoryStore(t), clock, backoff: undefined, retryForMs: 60 * minute,
  });
  const queuedAt = clock.now();
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  await untilSettled(clock, notifier, logs, peer);

  const gaps = peer.requests.slice(1).map((r, i) => r.at - (peer.requests[i]?.at ?? 0));
  assert.ok(gaps.length > 10, JSON.stringify(gaps));
  for (const [i, gap] of gaps.entries()) {
    const full = Math.min(second * 2 ** i, 5 * minute);
    const last = i === gaps.length - 1; // cut short by the deadline
    assert.ok(gap <= full && (last || gap >= full / 2), `gap ${i}: ${gap} ms (${JSON.stringify(gaps)})`);
  }
  assert.equal(peer.requests.at(-1)?.at, queuedAt + 60 * minute);
});

test('Retry-After: 120 on a 503 puts the next attempt 120 s later, past the backoff', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, (n, _req, res) => {
    if (n === 1) res.writeHead(503, { 'retry-after': '120' }).end();
    else res.writeHead(200).end();
  }, clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock, backoff: undefined });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const retried = await nextAttempt(clock, notifier, logs, peer);
  assert.equal(retried.msg, 'push notification will be retried');
  assert.equal(retried.delayMs, 120 * second);
  const [pending] = await notifier.pending();
  assert.equal(pending?.attempts, 1);
  assert.equal(pending?.lastError, 'status 503');

  const sent = await nextAttempt(clock, notifier, logs, peer);
  assert.equal(sent.msg, 'push notification sent');
  const [first, next] = peer.requests;
  assert.ok(first !== undefined && next !== undefined);
  assert.ok(next.at - first.at >= 120 * second, `${next.at - first.at} ms`);
});

test('Retry-After as an HTTP date on a 429 is honoured', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, (n, _req, res) => {
    if (n === 1) res.writeHead(429, { 'retry-after': new Date(clock.now() + 90 * second).toUTCString() }).end();
    else res.writeHead(200).end();
  }, clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock, backoff: undefined });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  assert.equal((await nextAttempt(clock, notifier, logs, peer)).msg, 'push notification will be retried');
  assert.equal((await nextAttempt(clock, notifier, logs, peer)).msg, 'push notification sent');
  const [first, next] = peer.requests;
  // HTTP dates have whole seconds: the wait is 89–90 s, far past the 1 s backoff.
  assert.ok(first !== undefined && next !== undefined);
  assert.ok(next.at - first.at >= 89 * second, `${next.at - first.at} ms`);
});

test('a Retry-After past the deadline puts the last attempt at the deadline, then drops', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, status(503, { 'retry-after': '3600' }), clock);
  const retryForMs = 10 * minute;
  const { notifier, logs, registry } = await setup(t, { store: await memoryStore(t), clock, retryForMs });
  const queuedAt = clock.now();
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const lines = await untilSettled(clock, notifier, logs, peer);
  assert.deepEqual(lines.map((l) => l.msg), ['push notification will be retried', 'push notification dropped after last attempt']);
  assert.deepEqual(peer.requests.map((r) => r.at - queuedAt), [10, retryForMs]);
  assert.equal(counterValue(registry, notificationsMetricName, 'dropped'), 1);
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

test('408 and 429 are retried like 5xx', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, (n, _req, res) => res.writeHead([408, 429][n - 1] ?? 204).end(), clock);
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock });
  await notifier.notify([{ listing: 'x', name: 'peer', url: `${peer.url}/x.ics` }], 'booking');
  const lines = await untilSettled(clock, notifier, logs, peer);
  assert.deepEqual(lines.map((l) => l.error ?? l.status), ['status 408', 'status 429', 204]);
});

test('a peer that does not answer within timeoutMs counts as a failed attempt', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, () => {}, clock); // holds every request; the server teardown resets them
  const { notifier, logs } = await setup(t, { store: await memoryStore(t), clock, timeoutMs: 3_000 });
  await notifier.notify([{ listing: 'x', name: 'slow', url: `${peer.url}/x.ics` }], 'booking');
  await clock.whenTimerAt(clock.now() + 10);
  clock.advance(10);
  await peer.received(1);
  clock.advance(3_000);
  const retried = await logs.next('push notification will be retried');
  assert.equal(retried.error, 'timeout');
  assert.equal((await notifier.pending())[0]?.lastError, 'timeout');
  assert.equal(peer.requests.length, 1);
});

test('a pending notification survives closing the notifier and the store, and is sent after restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-notifier-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'state.db');
  const clock = createFakeClock();
  let up = false;
  const peer = await startPeer(t, (_n, _req, res) => res.writeHead(up ? 200 : 503).end(), clock);
  const target = { listing: 'x', name: 'peer', url: `${peer.url}/x.ics?s=k` };

  const first = await openStore(path);
  const before = await setup(t, { store: first, clock, backoff: { baseMs: minute, maxMs: minute } });
  await before.notifier.notify([target], 'booking');
  assert.equal((await nextAttempt(clock, before.notifier, before.logs, peer)).msg, 'push notification will be retried');
  await before.notifier.close();
  await first.close();
  assert.equal(peer.requests.length, 1);
  assert.equal(clock.pending(), 0);

  up = true;
  // Two minutes later: the stored retry is past its dueAt and goes out at once.
  clock.advance(2 * minute);
  const second = await openStore(path);
  t.after(() => second.close());
  const after = await setup(t, { store: second, clock });
  const sent = await after.logs.next('push notification sent');
  assert.equal(sent.attempts, 2);
  assert.equal(peer.requests.length, 2);
  assert.equal(peer.requests[1]?.url, '/x.ics?s=k');
  assert.deepEqual(await after.notifier.pending(), []);
  await after.notifier.close(); // waits for the outbox write
  assert.deepEqual(await outboxOf(second), []);
});

test('a resumed notification already past retryFor gets one more attempt, then is dropped', async (t) => {
  const clock = createFakeClock();
  const store = await memoryStore(t);
  const port = await closedPort();
  const target = { listing: 'x', name: 'down', url: `http://127.0.0.1:${port}/x.ics` };
  const before = await setup(t, { store, clock, coalesceMs: minute });
  await before.notifier.notify([target], 'booking');
  await before.notifier.close();
  assert.equal((await outboxOf(store)).length, 1);

  clock.advance(25 * 60 * minute); // the sidecar was off for longer than the default retryFor (24 h)
  const after = await setup(t, { store, clock });
  const dropped = await after.logs.next('push notification dropped after last attempt');
  assert.equal(dropped.attempts, 1);
  assert.equal(dropped.retriedForMs, 25 * 60 * minute);
  await after.notifier.close(); // waits for the outbox write
  assert.deepEqual(await outboxOf(store), []);
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

test('close() leaves pending notifications in the store, no timer behind, and sends nothing more', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, status(200), clock);
  const store = await memoryStore(t);
  const { notifier, registry } = await setup(t, { store, clock, coalesceMs: 60_000 });
  const url = `${peer.url}/x.ics?s=k`;
  await notifier.notify([{ listing: 'x', name: 'peer', url }, { listing: 'y', name: 'peer', url }], 'booking');
  assert.equal(counterValue(registry, pendingMetricName), 2);
  assert.equal(clock.pending(), 1, 'one timer for the soonest entry');
  await notifier.close();
  assert.equal(clock.pending(), 0);
  clock.advance(2 * minute);
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

test('close() waits for a HEAD in flight, bounded by its deadline, and leaves no timer behind', async (t) => {
  const clock = createFakeClock();
  const peer = await startPeer(t, () => {}, clock); // holds every request
  const store = await memoryStore(t);
  const { notifier, logs } = await setup(t, { store, clock, timeoutMs: 3_000 });
  await notifier.notify([{ listing: 'x', name: 'slow', url: `${peer.url}/x.ics` }], 'booking');
  await clock.whenTimerAt(clock.now() + 10);
  clock.advance(10);
  await peer.received(1);

  let closed = false;
  const closing = notifier.close().then(() => {
    closed = true;
  });
  await new Promise(setImmediate);
  // Still waiting on the HEAD: its deadline is the only timer left.
  assert.equal(closed, false);
  assert.equal(clock.pending(), 1);
  clock.advance(3_000);
  await closing;
  assert.equal(clock.pending(), 0);
  // The attempt timed out and was recorded: the notification stays in the outbox for the next start.
  assert.equal((await logs.next('push notification will be retried')).error, 'timeout');
  const [left] = await outboxOf(store) as Array<{ attempts: number; lastError: string }>;
  assert.equal(left?.attempts, 1);
  assert.equal(left?.lastError, 'timeout');
});

test('Retry-After is read as delta-seconds or an HTTP-date, never negative', async () => {
  const { parseRetryAfter } = await import('../../src/push/notify-once.ts');
  const now = Date.parse('2026-12-01T12:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 7 ', now), 7_000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 12:01:30 GMT', now), 90_000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(['30', '60'], now), 30_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test('notify() calls landing while each HEAD is in flight never put two HEADs of one peer in flight, nor a storm', async (t) => {
  // A peer that takes 50 ms to answer, on the real clock: each HEAD that arrives makes the platform change again
  // (a notify() for the same peer while that HEAD is in flight), three times.
  let inFlight = 0;
  let most = 0;
  let notifies = 0;
  const started: { notifier?: Notifier } = {};
  const target = { listing: 'x', name: 'slow', url: '' };
  const peer = await startPeer(t, (_n, _req, res) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    if (notifies < 4) {
      notifies += 1;
      void started.notifier?.notify([target], `change ${notifies}`);
    }
    setTimeout(() => {
      inFlight -= 1;
      res.writeHead(200).end();
    }, 50);
  });
  target.url = `${peer.url}/x.ics`;
  const setupDone = await setup(t, { store: await memoryStore(t), coalesceMs: 10 });
  const { notifier } = setupDone;
  started.notifier = notifier;
  notifies = 1;
  await notifier.notify([target], 'change 1');
  // Each notify during a HEAD is one more HEAD after it: 4 notifies, at most 4 HEADs, one at a time.
  await setupDone.logs.next('push notification sent', 4);
  await new Promise((resolve) => setTimeout(resolve, 300)); // a storm would show here: HEADs every ~10 ms
  assert.equal(most, 1, 'two HEADs of one entry were in flight at once');
  assert.equal(peer.requests.length, 4);
  assert.deepEqual(await notifier.pending(), []);
});
