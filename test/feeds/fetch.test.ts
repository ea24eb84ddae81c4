// The feed fetcher against fake upstreams on real sockets: single-flight, byte cap, verdicts, failures.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type TestContext, test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { createFeedFetcher, type FeedFetch } from '../../src/feeds/fetch.ts';
import { createUpstreamPool } from '../../src/http/clients.ts';
import { closedPort, startServer } from '../helpers/servers.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/feeds/${name}`, import.meta.url));
const calendar = fixture('airbnb-dtstamp-fetch-time.ics');
const spliced = fixture('airbnb-http500-json-spliced.ics');

/** A fetcher on a pool to `origin`, both torn down with the test. */
function fetcherFor(
  t: TestContext,
  origin: string,
  options: { maxBodyBytes?: number; connections?: number; timeoutMs?: number } = {},
) {
  const upstream = createUpstreamPool({
    origin,
    connectTimeoutMs: 1_000,
    timeoutMs: options.timeoutMs ?? 5_000,
    connections: options.connections ?? 16,
  });
  t.after(() => upstream.destroy());
  return createFeedFetcher({
    upstream,
    maxBodyBytes: options.maxBodyBytes ?? 1_000_000,
    clock: { ...systemClock, now: () => 1_700_000_000_000 },
  });
}

/** An upstream that answers every request with `status`, `type` and `body`, counting requests. */
async function startFixed(t: TestContext, status: number, type: string | undefined, body: Buffer | string) {
  const seen: IncomingMessage[] = [];
  const fake = await startServer(t, (req, res) => {
    seen.push(req);
    res.writeHead(status, type === undefined ? {} : { 'content-type': type, 'x-upstream': 'yes' });
    res.end(body);
  });
  return { ...fake, seen };
}

function assertNotCalendar(outcome: FeedFetch, reason: string, status: number, body: Buffer | string) {
  assert.equal(outcome.kind, 'not-calendar');
  if (outcome.kind !== 'not-calendar') return;
  assert.equal(outcome.reason, reason);
  assert.equal(outcome.status, status);
  assert.deepEqual(outcome.body, Buffer.from(body));
}

test('a calendar answer is a calendar with the exact bytes, status and headers', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar; charset=utf-8', calendar);
  const fetcher = fetcherFor(t, upstream.url);
  const outcome = await fetcher.fetch('/ical/1.ics?s=abc', {});
  assert.equal(outcome.kind, 'calendar');
  if (outcome.kind !== 'calendar') return;
  assert.equal(outcome.status, 200);
  assert.ok(outcome.body.equals(calendar));
  assert.equal(outcome.headers['content-type'], 'text/calendar; charset=utf-8');
  assert.equal(outcome.headers['x-upstream'], 'yes');
  assert.equal(outcome.endsCalendar, true);
  assert.equal(outcome.fetchedAt, 1_700_000_000_000);
  assert.equal(upstream.seen[0]?.url, '/ical/1.ics?s=abc');
  assert.equal(fetcher.inflight(), 0);
});

test('hop-by-hop response headers are not part of the outcome', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar', connection: 'keep-alive, x-hop', 'x-hop': '1' });
    res.write(calendar);
    res.end();
  });
  const outcome = await fetcherFor(t, upstream.url).fetch('/f.ics', {});
  assert.equal(outcome.kind, 'calendar');
  if (outcome.kind !== 'calendar') return;
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'x-hop']) {
    assert.equal(outcome.headers[name], undefined, name);
  }
});

test('each calendar-ish content type is accepted', async (t) => {
  for (const type of ['application/ics', 'text/x-vcalendar', 'application/octet-stream', 'TEXT/PLAIN; charset=x']) {
    const upstream = await startFixed(t, 200, type, calendar);
    const outcome = await fetcherFor(t, upstream.url).fetch('/f.ics', {});
    assert.equal(outcome.kind, 'calendar', type);
  }
});

test('a complete calendar without Content-Type is a calendar (RFC 9110 §8.3 octet-stream)', async (t) => {
  const upstream = await startFixed(t, 200, undefined, calendar);
  assert.equal((await fetcherFor(t, upstream.url).fetch('/f.ics', {})).kind, 'calendar');
});

test('50 concurrent fetches of one URL share one upstream request and its bytes', async (t) => {
  let requests = 0;
  const upstream = await startServer(t, (_req, res) => {
    requests += 1;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/calendar' });
      res.end(calendar);
    }, 60);
  });
  const fetcher = fetcherFor(t, upstream.url);
  const pending = Array.from({ length: 50 }, () => fetcher.fetch('/f.ics?t=1', { authorization: 'Bearer a' }));
  assert.equal(fetcher.inflight(), 1);
  const outcomes = await Promise.all(pending);
  assert.equal(requests, 1);
  for (const outcome of outcomes) {
    assert.equal(outcome.kind, 'calendar');
    if (outcome.kind === 'calendar') assert.ok(outcome.body.equals(calendar));
  }
  assert.equal(fetcher.inflight(), 0);
});

test('fetches with different Authorization or Cookie values do not share', async (t) => {
  const seen: (string | undefined)[] = [];
  const upstream = await startServer(t, (req, res) => {
    seen.push(req.headers.authorization ?? req.headers.cookie);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/calendar' });
      res.end(calendar);
    }, 30);
  });
  const fetcher = fetcherFor(t, upstream.url);
  await Promise.all([
    fetcher.fetch('/f.ics', { authorization: 'Bearer a' }),
    fetcher.fetch('/f.ics', { Authorization: 'Bearer b' }),
    fetcher.fetch('/f.ics', { cookie: 'sid=1' }),
    fetcher.fetch('/f.ics', { cookie: 'sid=2' }),
    fetcher.fetch('/f.ics', { authorization: 'Bearer a' }),
  ]);
  assert.deepEqual(seen.sort(), ['Bearer a', 'Bearer b', 'sid=1', 'sid=2']);
});

test('different query strings do not share', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', calendar);
  const fetcher = fetcherFor(t, upstream.url);
  await Promise.all([fetcher.fetch('/f.ics?s=1', {}), fetcher.fetch('/f.ics?s=2', {})]);
  assert.deepEqual(upstream.seen.map((r) => r.url).sort(), ['/f.ics?s=1', '/f.ics?s=2']);
});

test('a fetch after the first one finished makes a new upstream request', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', calendar);
  const fetcher = fetcherFor(t, upstream.url);
  await fetcher.fetch('/f.ics', {});
  await fetcher.fetch('/f.ics', {});
  assert.equal(upstream.seen.length, 2);
});

test('conditional, range and encoding headers are answered by us, not sent upstream', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', calendar);
  await fetcherFor(t, upstream.url).fetch('/f.ics', {
    'if-none-match': '"x"',
    'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT',
    range: 'bytes=0-9',
    'accept-encoding': 'gzip',
    'x-custom': 'kept',
  });
  const headers = upstream.seen[0]?.headers;
  assert.equal(headers?.['if-none-match'], undefined);
  assert.equal(headers?.['if-modified-since'], undefined);
  assert.equal(headers?.range, undefined);
  assert.equal(headers?.['accept-encoding'], 'identity');
  assert.equal(headers?.['x-custom'], 'kept');
});

test('a 500 is not-calendar for its status, with the original bytes', async (t) => {
  const body = '{"code":500,"message":"error"}';
  const upstream = await startFixed(t, 500, 'application/json', body);
  const fetcher = fetcherFor(t, upstream.url);
  const outcome = await fetcher.fetch('/f.ics', {});
  assertNotCalendar(outcome, 'status', 500, body);
  if (outcome.kind === 'not-calendar') assert.equal(outcome.headers['x-upstream'], 'yes');
  assert.equal(fetcher.inflight(), 0);
});

test('a 500 whose body is a whole calendar is still not-calendar', async (t) => {
  const upstream = await startFixed(t, 500, 'text/calendar', calendar);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'status', 500, calendar);
});

test('a text/html 200 is not-calendar for its content type', async (t) => {
  const body = '<html><body>Log in</body></html>';
  const upstream = await startFixed(t, 200, 'text/html; charset=utf-8', body);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'content-type', 200, body);
});

test('a JSON error body with 200 application/json is not-calendar for its content type', async (t) => {
  const body = '{"error":"rate limited"}';
  const upstream = await startFixed(t, 200, 'application/json', body);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'content-type', 200, body);
});

test('a JSON error body served as text/calendar is not-calendar as incomplete', async (t) => {
  const body = '{"code":500,"message":"There was an error processing your request."}';
  const upstream = await startFixed(t, 200, 'text/calendar', body);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'incomplete', 200, body);
});

test('a truncated calendar (no END:VCALENDAR) is not-calendar as incomplete', async (t) => {
  const truncated = calendar.subarray(0, calendar.indexOf('END:VCALENDAR'));
  const upstream = await startFixed(t, 200, 'text/calendar', truncated);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'incomplete', 200, truncated);
});

test('a calendar with a JSON error spliced in but ending in END:VCALENDAR is a calendar', async (t) => {
  // The Airbnb quirk: the splice is the snapshot's business, the frame is complete.
  const upstream = await startFixed(t, 200, 'text/calendar', spliced);
  const outcome = await fetcherFor(t, upstream.url).fetch('/f.ics', {});
  assert.equal(outcome.kind, 'calendar');
});

test('an empty 200 is not-calendar as empty', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', '');
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'empty', 200, '');
});

test('a 206 partial answer is not-calendar for its status', async (t) => {
  const upstream = await startFixed(t, 206, 'text/calendar', calendar);
  assertNotCalendar(await fetcherFor(t, upstream.url).fetch('/f.ics', {}), 'status', 206, calendar);
});

/** An upstream that streams 16 KiB chunks until the client goes away, and reports when it does. */
async function startEndless(t: TestContext, headers: Record<string, string> = {}) {
  const { promise: closed, resolve } = Promise.withResolvers<boolean>();
  let requests = 0;
  const upstream = await startServer(t, (req, res: ServerResponse) => {
    requests += 1;
    if (req.url === '/small.ics') {
      res.writeHead(200, { 'content-type': 'text/calendar' });
      res.end(calendar);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar', ...headers });
    const chunk = Buffer.alloc(16_384, 'X');
    const timer = setInterval(() => res.write(chunk), 1);
    res.on('close', () => {
      clearInterval(timer);
      resolve(res.writableFinished);
    });
  });
  return { ...upstream, closed, requests: () => requests };
}

test('a body over the cap is too-large and the upstream connection is released', async (t) => {
  const upstream = await startEndless(t);
  const fetcher = fetcherFor(t, upstream.url, { maxBodyBytes: 100_000, connections: 1 });
  const outcome = await fetcher.fetch('/big.ics', {});
  assert.deepEqual(outcome, { kind: 'too-large' });
  assert.equal(await upstream.closed, false, 'the upstream saw the request closed before its end');
  assert.equal(fetcher.inflight(), 0);
  // With one connection, a second fetch only succeeds when the first one gave its connection up.
  const next = await fetcher.fetch('/small.ics', {});
  assert.equal(next.kind, 'calendar');
});

test('a declared Content-Length over the cap is too-large without reading the body', async (t) => {
  const upstream = await startEndless(t, { 'content-length': '50000000' });
  const fetcher = fetcherFor(t, upstream.url, { maxBodyBytes: 100_000 });
  assert.deepEqual(await fetcher.fetch('/big.ics', {}), { kind: 'too-large' });
  assert.equal(await upstream.closed, false);
  assert.equal(fetcher.inflight(), 0);
});

test('a body of exactly the cap is read', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', calendar);
  const outcome = await fetcherFor(t, upstream.url, { maxBodyBytes: calendar.length }).fetch('/f.ics', {});
  assert.equal(outcome.kind, 'calendar');
});

test('a refused upstream is failed with UPSTREAM_UNREACHABLE and leaves nothing in flight', async (t) => {
  const fetcher = fetcherFor(t, `http://127.0.0.1:${await closedPort()}`);
  const outcomes = await Promise.all([fetcher.fetch('/f.ics', {}), fetcher.fetch('/f.ics', {})]);
  for (const outcome of outcomes) {
    assert.equal(outcome.kind, 'failed');
    if (outcome.kind === 'failed') assert.equal(outcome.error.code, 'UPSTREAM_UNREACHABLE');
  }
  assert.equal(fetcher.inflight(), 0);
});

test('an upstream that stalls mid-body is failed with UPSTREAM_TIMEOUT', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' });
    res.write(calendar.subarray(0, 20));
  });
  const fetcher = fetcherFor(t, upstream.url, { timeoutMs: 100 });
  const outcome = await fetcher.fetch('/f.ics', {});
  assert.equal(outcome.kind, 'failed');
  if (outcome.kind === 'failed') assert.equal(outcome.error.code, 'UPSTREAM_TIMEOUT');
  assert.equal(fetcher.inflight(), 0);
});

test('an upstream that resets mid-body is failed and leaves nothing in flight', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar', 'content-length': String(calendar.length) });
    res.write(calendar.subarray(0, 20), () => req.socket.destroy());
  });
  const fetcher = fetcherFor(t, upstream.url);
  const outcome = await fetcher.fetch('/f.ics', {});
  assert.equal(outcome.kind, 'failed');
  assert.equal(fetcher.inflight(), 0);
});

test('shared outcomes are frozen so one caller cannot change another one\'s answer', async (t) => {
  const upstream = await startFixed(t, 200, 'text/calendar', calendar);
  const outcome = await fetcherFor(t, upstream.url).fetch('/f.ics', {});
  assert.ok(Object.isFrozen(outcome));
  if (outcome.kind === 'calendar') assert.ok(Object.isFrozen(outcome.headers));
});
