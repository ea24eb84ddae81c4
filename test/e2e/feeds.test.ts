// The feed engine end to end: client → icalpush → a fake calendar platform, real sockets on 127.0.0.1.
// Covers SPEC "Feed paths" (plain, enhanced and minimal GET, HEAD, OPTIONS) and "Guarantees"
// (bad answers, held drops, re-minted UIDs, tokens across restarts).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import ICAL from 'ical.js';
import { type Dispatcher, request } from 'undici';
import { openStore } from '../../src/store/open-store.ts';
import { startApp } from '../helpers/app.ts';
import { closedPort, startServer } from '../helpers/servers.ts';
import { assertValidICalendar } from '../helpers/valid-icalendar.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const feedsDir = new URL('../fixtures/feeds/', import.meta.url);
// Every feed answer varies by the request's protocol headers and, being compressed when asked (SPEC
// "Compression"), by Accept-Encoding.
const vary = 'Prefer, Sync-Token, If-None-Match, Accept-Encoding';
const rel = 'rel="subscribe-enhanced-get subscribe-enhanced_get"';
const minute = 60_000;
const day = 24 * 60 * minute;

// ---------------------------------------------------------------------------------------------
// Calendars

/** One all-day booking: `start`/`end` are DATE values (yyyymmdd); `extra` lines go before END. */
type EventSpec = { uid: string; start: string; end: string; summary?: string; extra?: string[] };

const prodId = '-//Fake Platform//Bookings 1.0//EN';

const berlin = [
  'BEGIN:VTIMEZONE',
  'TZID:Europe/Berlin',
  'BEGIN:DAYLIGHT',
  'TZOFFSETFROM:+0100',
  'TZOFFSETTO:+0200',
  'TZNAME:CEST',
  'DTSTART:19700329T020000',
  'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU',
  'END:DAYLIGHT',
  'BEGIN:STANDARD',
  'TZOFFSETFROM:+0200',
  'TZOFFSETTO:+0100',
  'TZNAME:CET',
  'DTSTART:19701025T030000',
  'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU',
  'END:STANDARD',
  'END:VTIMEZONE',
];

function vevent(event: EventSpec): string[] {
  return [
    'BEGIN:VEVENT',
    `UID:${event.uid}`,
    'DTSTAMP:20250101T120000Z',
    `DTSTART;VALUE=DATE:${event.start}`,
    `DTEND;VALUE=DATE:${event.end}`,
    `SUMMARY:${event.summary ?? 'Reserved'}`,
    ...(event.extra ?? []),
    'END:VEVENT',
  ];
}

/** A VCALENDAR with CRLF line ends; `timezone` adds a VTIMEZONE to the frame. */
function calendar(events: EventSpec[], options: { timezone?: boolean } = {}): string {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    `PRODID:${prodId}`,
    'CALSCALE:GREGORIAN',
    ...(options.timezone ? berlin : []),
    ...events.flatMap(vevent),
    'END:VCALENDAR',
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** `count` one-night bookings in `month` of 2025, uids `<prefix>1@test` … (at most 15 a month). */
function bookings(count: number, prefix = 'b', month = 3): EventSpec[] {
  const date = (day: number) => `2025${String(month).padStart(2, '0')}${String(day).padStart(2, '0')}`;
  return Array.from({ length: count }, (_, i) => ({ uid: `${prefix}${i + 1}@test`, start: date(i * 2 + 1), end: date(i * 2 + 2) }));
}

// ---------------------------------------------------------------------------------------------
// The fake platform

/** What the fake platform answers on its calendar paths. */
type UpstreamMode = 'calendar' | 'error500' | 'truncated' | 'json' | 'empty';

type FakeUpstream = {
  url: string;
  /** Calendar text per id, served at /calendar/<id>.ics (any query). */
  feeds: Map<string, string>;
  mode: UpstreamMode;
  /** Wait this long before answering. */
  delayMs: number;
  /** Stamp every DTSTAMP with the time of the request (Airbnb, Booking.com). */
  churnDtstamp: boolean;
  /** Prefix every UID with a per-request counter (exporters that mint UIDs per export). */
  mintUids: boolean;
  /** Send Content-Length (true) or a chunked body without one (false). */
  declareLength: boolean;
  /** The last body the platform sent. */
  lastBody: Buffer | undefined;
  /** Requests received for `target` (path + query), of `method` when given. */
  count(target: string, method?: string): number;
  total(): number;
  /** Holds every request from now on until `release()`; `reached` resolves when one is waiting. */
  stall(): { reached: Promise<void>; release(): void };
};

const jsonError = '{"error":"temporarily unavailable","code":"E_BUSY"}';

async function startUpstream(t: TestContext): Promise<FakeUpstream> {
  const seen: { method: string; target: string }[] = [];
  let gate: { reached(): void; released: Promise<void> } | undefined;
  let served = 0;
  const upstream: FakeUpstream = {
    url: '',
    feeds: new Map(),
    mode: 'calendar',
    delayMs: 0,
    churnDtstamp: false,
    mintUids: false,
    declareLength: true,
    lastBody: undefined,
    count: (target, method) => seen.filter((r) => r.target === target && (!method || r.method === method)).length,
    total: () => seen.length,
    stall() {
      const reached = Promise.withResolvers<void>();
      const released = Promise.withResolvers<void>();
      gate = { reached: reached.resolve, released: released.promise };
      return {
        reached: reached.promise,
        release() {
          gate = undefined;
          released.resolve();
        },
      };
    },
  };
  const server = await startServer(t, async (req, res) => {
    const target = req.url ?? '/';
    seen.push({ method: req.method ?? 'GET', target });
    if (gate) {
      const held = gate;
      held.reached();
      await held.released;
    }
    if (upstream.delayMs > 0) await sleep(upstream.delayMs);
    const reply = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
      const bytes = Buffer.from(body, 'utf8');
      upstream.lastBody = bytes;
      const length = upstream.declareLength ? { 'content-length': String(bytes.length) } : {};
      res.writeHead(status, { 'content-type': type, ...length, ...headers });
      if (req.method !== 'HEAD') res.write(bytes);
      res.end();
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD' });
      res.end();
      return;
    }
    const id = /^\/calendar\/([^/?]+)\.ics(?:\?|$)/.exec(target)?.[1];
    let text = id === undefined ? undefined : upstream.feeds.get(id);
    if (text === undefined) {
      reply(404, 'text/plain', 'no such calendar');
      return;
    }
    served += 1;
    const n = served;
    if (upstream.churnDtstamp) {
      const stamp = new Date(Date.UTC(2025, 5, 1) + n * minute).toISOString().replace(/[-:]|\.\d+/g, '');
      text = text.replace(/^DTSTAMP:.*$/gm, `DTSTAMP:${stamp}`);
    }
    if (upstream.mintUids) text = text.replace(/^UID:/gm, `UID:export${n}-`);
    const calendarType = 'text/calendar; charset=utf-8';
    switch (upstream.mode) {
      case 'error500':
        reply(500, 'text/html', '<h1>500 Internal Server Error</h1>');
        return;
      case 'json':
        reply(200, 'application/json', jsonError);
        return;
      case 'truncated':
        // The connection to the exporter's database dropped mid-feed: no END:VCALENDAR.
        reply(200, calendarType, text.slice(0, text.lastIndexOf('END:VEVENT')));
        return;
      case 'empty':
        reply(200, calendarType, calendar([]));
        return;
      case 'calendar':
        reply(200, calendarType, text, {
          etag: `"upstream-${n}"`,
          'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT',
          'x-platform': 'fake',
        });
    }
  });
  upstream.url = server.url;
  return upstream;
}

// ---------------------------------------------------------------------------------------------
// Client side

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; bytes: Buffer; text: string };

async function send(
  url: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, text: bytes.toString('utf8') };
}

/** One response header as a string (repeated ones joined). */
function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** An enhanced GET, with a token and a page limit when given. */
function enhanced(url: string, token?: string, limit?: number): Promise<Answer> {
  const prefer = limit === undefined ? 'subscribe-enhanced-get' : `subscribe-enhanced-get, limit=${limit}`;
  return send(url, { headers: { prefer, ...(token === undefined ? {} : { 'sync-token': token }) } });
}

/** The Sync-Token of an answer; fails the test when there is none. */
function tokenOf(answer: Answer): string {
  const token = header(answer, 'sync-token');
  assert.ok(token, 'answer has a Sync-Token');
  return token;
}

/** The ETag of an answer; fails the test when there is none. */
function etagOf(answer: Answer): string {
  const etag = header(answer, 'etag');
  assert.ok(etag, 'answer has an ETag');
  return etag;
}

type ParsedEvent = {
  uid: string;
  status?: string;
  summary?: string;
  dtstart?: string;
  dtstamp?: string;
  recurrenceId?: string;
};

/** Parses a body with ical.js (an independent parser): throws when it is not a valid iCalendar, or names a
 * TZID without its VTIMEZONE (SPEC "Deltas are valid iCalendar"). */
function parseCalendar(text: string) {
  assertValidICalendar(text);
  const root = new ICAL.Component(ICAL.parse(text));
  const value = (c: ICAL.Component, name: string) => {
    const found = c.getFirstPropertyValue(name);
    return found === null || found === undefined ? undefined : String(found);
  };
  const events: ParsedEvent[] = root.getAllSubcomponents('vevent').map((c) => {
    const event: ParsedEvent = { uid: value(c, 'uid') ?? '' };
    const status = value(c, 'status');
    const summary = value(c, 'summary');
    const dtstart = c.getFirstProperty('dtstart')?.toICALString();
    const dtstamp = value(c, 'dtstamp');
    const recurrenceId = value(c, 'recurrence-id');
    return {
      ...event,
      ...(status === undefined ? {} : { status }),
      ...(summary === undefined ? {} : { summary }),
      ...(dtstart === undefined ? {} : { dtstart }),
      ...(dtstamp === undefined ? {} : { dtstamp }),
      ...(recurrenceId === undefined ? {} : { recurrenceId }),
    };
  });
  return {
    name: root.name,
    version: value(root, 'version'),
    prodid: value(root, 'prodid'),
    timezones: root.getAllSubcomponents('vtimezone').map((tz) => value(tz, 'tzid')),
    events,
    live: events.filter((e) => e.status !== 'DELETED').map((e) => e.uid).sort(),
    deleted: events.filter((e) => e.status === 'DELETED'),
  };
}

/** The value of one series in /_icalpush/metrics (0 when absent). */
async function metric(appUrl: string, series: string): Promise<number> {
  const answer = await send(`${appUrl}/_icalpush/metrics`);
  assert.equal(answer.status, 200);
  const line = answer.text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

type FeedStatusJson = { feed: string; version: number; entities: number; held?: { since: string; entities: number } };

async function feedStatus(appUrl: string, feed: string): Promise<FeedStatusJson | undefined> {
  const answer = await send(`${appUrl}/_icalpush/status`);
  assert.equal(answer.status, 200);
  const report = JSON.parse(answer.text) as { feeds: FeedStatusJson[] };
  return report.feeds.find((f) => f.feed === feed);
}

/** An upstream serving three bookings at /calendar/a.ics, and the app in front of it. */
type AppOptions = Parameters<typeof startApp> extends [unknown, unknown, ...infer R] ? R : never;

async function setup(t: TestContext, ...rest: AppOptions) {
  const upstream = await startUpstream(t);
  upstream.feeds.set('a', calendar(bookings(3), { timezone: true }));
  const app = await startApp(t, upstream.url, ...rest);
  return { upstream, app, feed: `${app.url}/calendar/a.ics` };
}

// ---------------------------------------------------------------------------------------------
// 1. Plain GET

test('plain GET: upstream status and body bytes unchanged, a weak ETag replacing the upstream\'s, Vary', async (t) => {
  const { upstream, feed } = await setup(t);
  const res = await send(feed);
  assert.equal(res.status, 200);
  assert.ok(upstream.lastBody);
  assert.deepEqual(res.bytes, upstream.lastBody);
  assert.equal(header(res, 'x-platform'), 'fake');
  assert.match(etagOf(res), /^W\/"[^"]+"$/);
  assert.notEqual(etagOf(res), '"upstream-1"');
  assert.notEqual(header(res, 'last-modified'), 'Wed, 01 Jan 2020 00:00:00 GMT');
  assert.equal(header(res, 'vary'), vary);
  assert.equal(header(res, 'content-length'), String(upstream.lastBody.length));
});

test('plain GET: DTSTAMP churn (Booking.com t0 → t1) keeps the ETag, and If-None-Match gets 304', async (t) => {
  const upstream = await startUpstream(t);
  const [t0, t1] = await Promise.all([
    readFile(new URL('booking-dtstamp-churn-t0.ics', feedsDir), 'utf8'),
    readFile(new URL('booking-dtstamp-churn-t1.ics', feedsDir), 'utf8'),
  ]);
  assert.notEqual(t0, t1);
  upstream.feeds.set('a', t0);
  const { url } = await startApp(t, upstream.url);
  const first = await send(`${url}/calendar/a.ics`);
  assert.equal(first.status, 200);
  upstream.feeds.set('a', t1);
  const second = await send(`${url}/calendar/a.ics`);
  assert.equal(second.status, 200);
  assert.equal(second.text, t1);
  assert.equal(etagOf(second), etagOf(first));
  const conditional = await send(`${url}/calendar/a.ics`, { headers: { 'if-none-match': etagOf(first) } });
  assert.equal(conditional.status, 304);
  assert.equal(upstream.count('/calendar/a.ics'), 3);
});

test('plain GET: any content change gives a new ETag', async (t) => {
  const { upstream, feed } = await setup(t);
  const first = await send(feed);
  const events = bookings(3);
  events[1] = { ...events[1]!, summary: 'Owner block' };
  upstream.feeds.set('a', calendar(events, { timezone: true }));
  const second = await send(feed);
  assert.equal(second.status, 200);
  assert.match(etagOf(second), /^W\/"[^"]+"$/);
  assert.notEqual(etagOf(second), etagOf(first));
  const old = await send(feed, { headers: { 'if-none-match': etagOf(first) } });
  assert.equal(old.status, 200);
  assert.equal(old.text, upstream.feeds.get('a'));
});

test('plain GET: If-None-Match with the current ETag gets 304 with the ETag and no body', async (t) => {
  const { upstream, feed } = await setup(t);
  const first = await send(feed);
  const res = await send(feed, { headers: { 'if-none-match': etagOf(first) } });
  assert.equal(res.status, 304);
  assert.equal(etagOf(res), etagOf(first));
  assert.equal(res.bytes.length, 0);
  assert.equal(header(res, 'vary'), vary);
  assert.match(header(res, 'link') ?? '', /\/calendar\/a\.ics>; rel="subscribe-enhanced-get subscribe-enhanced_get"$/);
  // The sidecar answers the condition itself: the upstream was read both times.
  assert.equal(upstream.count('/calendar/a.ics'), 2);
});

test('plain GET: If-Modified-Since at or after Last-Modified gets 304, before it 200', async (t) => {
  const { feed } = await setup(t);
  const first = await send(feed);
  const lastModified = header(first, 'last-modified');
  assert.ok(lastModified);
  const at = await send(feed, { headers: { 'if-modified-since': lastModified } });
  assert.equal(at.status, 304);
  assert.equal(at.bytes.length, 0);
  const after = new Date(Date.parse(lastModified) + 3_600_000).toUTCString();
  assert.equal((await send(feed, { headers: { 'if-modified-since': after } })).status, 304);
  const before = new Date(Date.parse(lastModified) - 3_600_000).toUTCString();
  const changed = await send(feed, { headers: { 'if-modified-since': before } });
  assert.equal(changed.status, 200);
  assert.deepEqual(changed.bytes, first.bytes);
});

test('plain GET: Link names the feed at the request\'s Host by default', async (t) => {
  const { app } = await setup(t);
  const res = await send(`${app.url}/calendar/a.ics?lang=en`, { headers: { host: 'cal.platform.test:8443' } });
  assert.equal(res.status, 200);
  assert.equal(header(res, 'link'), `<http://cal.platform.test:8443/calendar/a.ics?lang=en>; ${rel}`);
});

test('plain GET: Link is built from publicBaseUrl when set (base + path + query)', async (t) => {
  const { app } = await setup(t, { publicBaseUrl: 'https://cal.example.com' });
  const res = await send(`${app.url}/calendar/a.ics?t=s3cret`);
  assert.equal(res.status, 200);
  assert.equal(header(res, 'link'), `<https://cal.example.com/calendar/a.ics?t=s3cret>; ${rel}`);
});

// ---------------------------------------------------------------------------------------------
// 2. Concurrent GETs

test('20 concurrent plain GETs share one upstream request and all get the same 200 body', async (t) => {
  const { upstream, feed } = await setup(t);
  upstream.delayMs = 100;
  const answers = await Promise.all(Array.from({ length: 20 }, () => send(feed)));
  assert.equal(upstream.count('/calendar/a.ics'), 1);
  for (const answer of answers) {
    assert.equal(answer.status, 200);
    assert.equal(answer.text, upstream.feeds.get('a'));
    assert.equal(etagOf(answer), etagOf(answers[0]!));
  }
});

// ---------------------------------------------------------------------------------------------
// 3. Bad upstream answers

const badAnswers: { mode: UpstreamMode; name: string; status: number; type: string }[] = [
  { mode: 'error500', name: 'a 500', status: 500, type: 'text/html' },
  { mode: 'truncated', name: 'a truncated body (no END:VCALENDAR)', status: 200, type: 'text/calendar; charset=utf-8' },
  { mode: 'json', name: 'a 200 with a JSON error body', status: 200, type: 'application/json' },
  { mode: 'empty', name: 'a one-off valid but empty VCALENDAR', status: 200, type: 'text/calendar; charset=utf-8' },
];

for (const bad of badAnswers) {
  test(`${bad.name} is passed through unchanged and never changes the snapshot`, async (t) => {
    const { upstream, feed } = await setup(t);
    const token = tokenOf(await enhanced(feed));
    const etag = etagOf(await send(feed, { method: 'HEAD' }));

    upstream.mode = bad.mode;
    const res = await send(feed);
    assert.equal(res.status, bad.status);
    assert.equal(header(res, 'content-type'), bad.type);
    assert.ok(upstream.lastBody);
    assert.deepEqual(res.bytes, upstream.lastBody);
    const head = await send(feed, { method: 'HEAD' });
    if (bad.mode === 'empty') {
      // A valid calendar, held: the snapshot still stands for the feed.
      assert.equal(etagOf(head), etag);
    } else {
      // The last answer was not a calendar: HEAD is the upstream's, never the old snapshot's (SPEC "HEAD").
      assert.equal(head.status, bad.status);
      assert.equal(header(head, 'etag'), undefined);
    }

    upstream.mode = 'calendar';
    const after = await enhanced(feed, token);
    assert.equal(after.status, 304);
    assert.equal(tokenOf(after), token);
    assert.equal(etagOf(await send(feed, { method: 'HEAD' })), etag);
  });
}

test('an empty export held past hold.span is applied: the delta carries a tombstone per removed event', async (t) => {
  const clock = createFakeClock(Date.UTC(2025, 5, 1));
  const { upstream, app, feed } = await setup(t, { snapshots: { hold: { span: '10m' } } }, undefined, clock);
  const full = await enhanced(feed);
  const token = tokenOf(full);
  const before = parseCalendar(full.text).events;
  assert.equal(before.length, 3);

  upstream.mode = 'empty';
  assert.equal((await send(feed)).status, 200);
  const held = await feedStatus(app.url, '/calendar/a.ics');
  assert.equal(held?.held?.entities, 0);
  assert.equal(held?.entities, 3);
  clock.advance(5 * minute);
  // Still within the span: enhanced GET answers from the last good snapshot.
  assert.equal((await enhanced(feed, token)).status, 304);
  assert.deepEqual(parseCalendar((await enhanced(feed)).text).live, ['b1@test', 'b2@test', 'b3@test']);

  clock.advance(6 * minute);
  assert.equal((await send(feed)).status, 200);
  const applied = await feedStatus(app.url, '/calendar/a.ics');
  assert.equal(applied?.held, undefined);
  assert.equal(applied?.entities, 0);

  const delta = await enhanced(feed, token);
  assert.equal(delta.status, 200);
  const parsed = parseCalendar(delta.text);
  assert.deepEqual(parsed.live, []);
  assert.deepEqual(parsed.deleted.map((e) => e.uid).sort(), before.map((e) => e.uid).sort());
  for (const gone of parsed.deleted) {
    const was = before.find((e) => e.uid === gone.uid);
    assert.equal(gone.dtstart, was?.dtstart);
    assert.match(gone.dtstamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  assert.notEqual(tokenOf(delta), token);
});

// ---------------------------------------------------------------------------------------------
// 4. Enhanced GET

test('enhanced GET without a token gets the full feed, a quoted data: Sync-Token and Preference-Applied', async (t) => {
  const { feed } = await setup(t);
  const res = await enhanced(feed);
  assert.equal(res.status, 200);
  assert.match(tokenOf(res), /^"data:,[^"\s]+"$/);
  assert.equal(header(res, 'preference-applied'), 'subscribe-enhanced-get');
  assert.equal(header(res, 'vary'), vary);
  const parsed = parseCalendar(res.text);
  assert.deepEqual(parsed.live, ['b1@test', 'b2@test', 'b3@test']);
  assert.deepEqual(parsed.timezones, ['Europe/Berlin']);
});

test('enhanced GET with the current token and nothing changed gets 304 with the same token', async (t) => {
  const { feed, upstream } = await setup(t);
  const token = tokenOf(await enhanced(feed));
  const res = await enhanced(feed, token);
  assert.equal(res.status, 304);
  assert.equal(tokenOf(res), token);
  assert.equal(res.bytes.length, 0);
  assert.equal(header(res, 'vary'), vary);
  assert.equal(upstream.count('/calendar/a.ics'), 2);
});

test('enhanced GET delta: frame, every VTIMEZONE, added and modified events, a tombstone with the last DTSTART', async (t) => {
  const { upstream, feed } = await setup(t);
  const events = bookings(3);
  const first = tokenOf(await enhanced(feed));
  // b3 moves first, so its tombstone must carry the moved DTSTART, not the original one.
  events[2] = { ...events[2]!, start: '20250320', end: '20250322' };
  upstream.feeds.set('a', calendar(events, { timezone: true }));
  const moved = await enhanced(feed, first);
  assert.equal(moved.status, 200);
  assert.deepEqual(parseCalendar(moved.text).live, ['b3@test']);
  const token = tokenOf(moved);

  const next = [events[0]!, { ...events[1]!, summary: 'Owner block' }, { uid: 'new@test', start: '20250401', end: '20250405' }];
  upstream.feeds.set('a', calendar(next, { timezone: true }));
  const delta = await enhanced(feed, token);
  assert.equal(delta.status, 200);
  assert.equal(header(delta, 'content-type'), 'text/calendar; charset=utf-8');
  assert.equal(header(delta, 'preference-applied'), 'subscribe-enhanced-get');
  assert.equal(header(delta, 'vary'), vary);
  const parsed = parseCalendar(delta.text);
  assert.equal(parsed.name, 'vcalendar');
  assert.equal(parsed.version, '2.0');
  assert.equal(parsed.prodid, prodId);
  assert.deepEqual(parsed.timezones, ['Europe/Berlin']);
  assert.deepEqual(parsed.live, ['b2@test', 'new@test']);
  assert.equal(parsed.events.find((e) => e.uid === 'b2@test')?.summary, 'Owner block');
  assert.equal(parsed.deleted.length, 1);
  const [gone] = parsed.deleted;
  assert.equal(gone?.uid, 'b3@test');
  assert.equal(gone.dtstart, 'DTSTART;VALUE=DATE:20250320');
  assert.ok(gone.dtstamp);
  const newToken = tokenOf(delta);
  assert.notEqual(newToken, token);
  assert.equal((await enhanced(feed, newToken)).status, 304);
});

test('enhanced GET: DTSTAMP-only churn is no change (304)', async (t) => {
  const { upstream, feed } = await setup(t);
  upstream.churnDtstamp = true;
  const token = tokenOf(await enhanced(feed));
  const stampBefore = /DTSTAMP:(\S+)/.exec(upstream.lastBody?.toString() ?? '')?.[1];
  const res = await enhanced(feed, token);
  const stampAfter = /DTSTAMP:(\S+)/.exec(upstream.lastBody?.toString() ?? '')?.[1];
  assert.ok(stampBefore);
  assert.notEqual(stampAfter, stampBefore);
  assert.equal(res.status, 304);
  assert.equal(tokenOf(res), token);
});

test('enhanced GET: a recurring master and its override are one entity; changing the override sends both', async (t) => {
  const upstream = await startUpstream(t);
  const master: EventSpec = { uid: 'weekly@test', start: '20250303', end: '20250304', summary: 'Cleaning',
    extra: ['RRULE:FREQ=WEEKLY;COUNT=6'] };
  const override: EventSpec = { uid: 'weekly@test', start: '20250311', end: '20250312', summary: 'Cleaning (moved)',
    extra: ['RECURRENCE-ID;VALUE=DATE:20250310'] };
  const others = bookings(2);
  upstream.feeds.set('a', calendar([master, override, ...others], { timezone: true }));
  const { url } = await startApp(t, upstream.url);
  const feed = `${url}/calendar/a.ics`;
  const token = tokenOf(await enhanced(feed));
  upstream.feeds.set('a', calendar([master, { ...override, summary: 'Deep cleaning' }, ...others], { timezone: true }));
  const delta = await enhanced(feed, token);
  assert.equal(delta.status, 200);
  const parsed = parseCalendar(delta.text);
  assert.deepEqual(parsed.events.map((e) => e.uid), ['weekly@test', 'weekly@test']);
  assert.equal(parsed.events.filter((e) => e.recurrenceId !== undefined).length, 1);
  assert.equal(parsed.events.find((e) => e.recurrenceId !== undefined)?.summary, 'Deep cleaning');
  assert.equal(parsed.events.find((e) => e.recurrenceId === undefined)?.summary, 'Cleaning');
  assert.deepEqual(parsed.deleted, []);
});

// ---------------------------------------------------------------------------------------------
// 5. Paging

test('Prefer limit=2 pages through 5 pending changes exactly once, then 304', async (t) => {
  const upstream = await startUpstream(t);
  const events = bookings(4);
  upstream.feeds.set('a', calendar(events, { timezone: true }));
  const { url } = await startApp(t, upstream.url);
  const feed = `${url}/calendar/a.ics`;
  let token = tokenOf(await enhanced(feed));
  // 5 changes: b1 modified, b2 removed, three added (on other dates: same content would be a re-keying).
  const next = [{ ...events[0]!, summary: 'Changed' }, events[2]!, events[3]!, ...bookings(3, 'n', 4)];
  upstream.feeds.set('a', calendar(next, { timezone: true }));

  const received: string[] = [];
  const sizes: number[] = [];
  for (let page = 0; page < 10; page += 1) {
    const res = await enhanced(feed, token, 2);
    if (res.status === 304) break;
    assert.equal(res.status, 200);
    const parsed = parseCalendar(res.text);
    assert.deepEqual(parsed.timezones, ['Europe/Berlin']);
    const uids = parsed.events.map((e) => (e.status === 'DELETED' ? `-${e.uid}` : e.uid));
    sizes.push(uids.length);
    received.push(...uids);
    if (received.length < 5) assert.match(header(res, 'preference-applied') ?? '', /(^|,\s*)limit=2(\s*,|$)/);
    assert.notEqual(tokenOf(res), token);
    token = tokenOf(res);
  }
  assert.deepEqual(sizes, [2, 2, 1]);
  assert.deepEqual(received.sort(), ['-b2@test', 'b1@test', 'n1@test', 'n2@test', 'n3@test']);
  assert.equal((await enhanced(feed, token, 2)).status, 304);
});

test('a limited first sync (no token, 5 events, limit=2) pages through the whole feed', async (t) => {
  const upstream = await startUpstream(t);
  upstream.feeds.set('a', calendar(bookings(5), { timezone: true }));
  const { url } = await startApp(t, upstream.url);
  const feed = `${url}/calendar/a.ics`;
  const first = await enhanced(feed, undefined, 2);
  assert.equal(first.status, 200);
  assert.match(header(first, 'preference-applied') ?? '', /subscribe-enhanced-get/);
  assert.match(header(first, 'preference-applied') ?? '', /limit=2/);
  const received = parseCalendar(first.text).live;
  assert.equal(received.length, 2);
  let token = tokenOf(first);
  for (let page = 0; page < 10; page += 1) {
    const res = await enhanced(feed, token, 2);
    if (res.status === 304) break;
    assert.equal(res.status, 200);
    const parsed = parseCalendar(res.text);
    assert.ok(parsed.events.length <= 2);
    assert.deepEqual(parsed.deleted, []);
    received.push(...parsed.live);
    token = tokenOf(res);
  }
  assert.deepEqual(received.sort(), ['b1@test', 'b2@test', 'b3@test', 'b4@test', 'b5@test']);
});

// A first sync's page tokens start at the version it began at, so a raised retention floor never refuses them.
test('a limited first sync pages through the whole feed after tombstones were pruned', async (t) => {
  const clock = createFakeClock(Date.UTC(2025, 5, 1));
  const upstream = await startUpstream(t);
  const events = bookings(6);
  upstream.feeds.set('a', calendar(events, { timezone: true }));
  const { url } = await startApp(t, upstream.url, { snapshots: { retention: '1d' } }, undefined, clock);
  const feed = `${url}/calendar/a.ics`;
  assert.equal((await send(feed)).status, 200);
  upstream.feeds.set('a', calendar(events.slice(0, 5), { timezone: true }));
  assert.equal((await send(feed)).status, 200);
  clock.advance(2 * day);
  // b5 changes: the read that applies it prunes b6's tombstone (older than a day).
  upstream.feeds.set('a', calendar([...events.slice(0, 4), { ...events[4]!, summary: 'Changed' }], { timezone: true }));
  assert.equal((await send(feed)).status, 200);

  const first = await enhanced(feed, undefined, 2);
  assert.equal(first.status, 200);
  const received = parseCalendar(first.text).live;
  let token = tokenOf(first);
  for (let page = 0; page < 10; page += 1) {
    const res = await enhanced(feed, token, 2);
    if (res.status === 304) break;
    assert.equal(res.status, 200);
    received.push(...parseCalendar(res.text).live);
    token = tokenOf(res);
  }
  assert.deepEqual(received.sort(), ['b1@test', 'b2@test', 'b3@test', 'b4@test', 'b5@test']);
});

// ---------------------------------------------------------------------------------------------
// 6. 409 Conflict

function assertConflict(res: Answer): void {
  assert.equal(res.status, 409);
  assert.equal(header(res, 'vary'), vary);
}

test('enhanced GET with a garbage token gets 409 with Vary', async (t) => {
  const { feed } = await setup(t);
  await enhanced(feed);
  assertConflict(await enhanced(feed, '"data:,garbage"'));
  assertConflict(await enhanced(feed, 'not-a-token'));
});

test('enhanced GET with another feed\'s token gets 409', async (t) => {
  const { upstream, feed, app } = await setup(t);
  upstream.feeds.set('b', upstream.feeds.get('a')!);
  const own = tokenOf(await enhanced(feed));
  const other = tokenOf(await enhanced(`${app.url}/calendar/b.ics`));
  assert.notEqual(other, own);
  assert.equal((await enhanced(feed, own)).status, 304);
  assertConflict(await enhanced(feed, other));
});

test('enhanced GET with a token whose version is from the future gets 409', async (t) => {
  const { feed } = await setup(t);
  const token = tokenOf(await enhanced(feed));
  const match = /^"(data:,v1\.[^.]+\.[^.]+)\.(\d+)"$/.exec(token);
  assert.ok(match, `token ${token} has the expected shape`);
  const future = `"${match[1]}.${Number(match[2]) + 5}"`;
  assert.equal((await enhanced(feed, token)).status, 304);
  assertConflict(await enhanced(feed, future));
});

test('enhanced GET with a token from before a removal whose tombstone is past retention gets 409', async (t) => {
  const clock = createFakeClock(Date.UTC(2025, 5, 1));
  const { upstream, feed } = await setup(t, { snapshots: { retention: '1d' } }, undefined, clock);
  const events = bookings(3);
  const beforeRemoval = tokenOf(await enhanced(feed));
  upstream.feeds.set('a', calendar(events.slice(0, 2), { timezone: true }));
  const removal = await enhanced(feed, beforeRemoval);
  assert.equal(removal.status, 200);
  assert.equal(parseCalendar(removal.text).deleted[0]?.uid, 'b3@test');
  const afterRemoval = tokenOf(removal);

  clock.advance(2 * day);
  upstream.feeds.set('a', calendar([{ ...events[0]!, summary: 'Changed' }, events[1]!], { timezone: true }));
  assert.equal((await send(feed)).status, 200);
  assertConflict(await enhanced(feed, beforeRemoval));
  // A token taken after the removal needs no pruned tombstone: it still gets its delta.
  const delta = await enhanced(feed, afterRemoval);
  assert.equal(delta.status, 200);
  assert.deepEqual(parseCalendar(delta.text).live, ['b1@test']);
});

// ---------------------------------------------------------------------------------------------
// 7. Prefer: return=minimal

test('return=minimal with the current ETag gets 304', async (t) => {
  const { feed } = await setup(t);
  const etag = etagOf(await send(feed));
  const res = await send(feed, { headers: { prefer: 'return=minimal', 'if-none-match': etag } });
  assert.equal(res.status, 304);
  assert.equal(etagOf(res), etag);
  assert.equal(res.bytes.length, 0);
});

test('return=minimal with an older ETag gets only the changes and Preference-Applied: return=minimal', async (t) => {
  const { upstream, feed } = await setup(t);
  const old = etagOf(await send(feed));
  const events = bookings(3);
  upstream.feeds.set('a', calendar([events[0]!, { ...events[1]!, summary: 'Owner block' }], { timezone: true }));
  const current = etagOf(await send(feed));
  assert.notEqual(current, old);
  const res = await send(feed, { headers: { prefer: 'return=minimal', 'if-none-match': old } });
  assert.equal(res.status, 200);
  assert.equal(header(res, 'preference-applied'), 'return=minimal');
  assert.equal(etagOf(res), current);
  const parsed = parseCalendar(res.text);
  assert.deepEqual(parsed.live, ['b2@test']);
  assert.deepEqual(parsed.deleted.map((e) => e.uid), ['b3@test']);
});

test('return=minimal with an unknown ETag gets the full upstream feed without Preference-Applied', async (t) => {
  const { upstream, feed } = await setup(t);
  await send(feed);
  const res = await send(feed, { headers: { prefer: 'return=minimal', 'if-none-match': 'W/"never-issued"' } });
  assert.equal(res.status, 200);
  assert.equal(header(res, 'preference-applied'), undefined);
  assert.ok(upstream.lastBody);
  assert.deepEqual(res.bytes, upstream.lastBody);
});

// ---------------------------------------------------------------------------------------------
// 8. HEAD

test('HEAD is answered from the snapshot while the upstream is stalled, without contacting it', async (t) => {
  const { upstream, feed } = await setup(t);
  const got = await send(feed);
  const stall = upstream.stall();
  let slowDone = false;
  const slow = send(feed).then((answer) => {
    slowDone = true;
    return answer;
  });
  await stall.reached;
  const started = performance.now();
  const res = await send(feed, { method: 'HEAD' });
  const elapsedMs = performance.now() - started;
  assert.equal(slowDone, false, 'HEAD answered while the upstream still held the GET');
  assert.ok(elapsedMs < 1_000, `HEAD took ${elapsedMs} ms`);
  assert.equal(res.status, 200);
  assert.equal(header(res, 'content-type'), 'text/calendar; charset=utf-8');
  assert.equal(etagOf(res), etagOf(got));
  assert.match(header(res, 'link') ?? '', /^<http:\/\/127\.0\.0\.1:\d+\/calendar\/a\.ics>; rel="subscribe-enhanced-get subscribe-enhanced_get"$/);
  assert.equal(upstream.count('/calendar/a.ics', 'HEAD'), 0);
  assert.equal(upstream.total(), 2);
  stall.release();
  assert.equal((await slow).status, 200);
});

test('HEAD for a feed never read is the upstream\'s answer: a calendar gets Link, a 404 stays a 404', async (t) => {
  const { upstream, app, feed } = await setup(t);
  const missing = await send(`${app.url}/calendar/unknown.ics`, { method: 'HEAD' });
  assert.equal(missing.status, 404);
  assert.equal(header(missing, 'link'), undefined);
  assert.equal(upstream.count('/calendar/unknown.ics', 'HEAD'), 1);
  const there = await send(feed, { method: 'HEAD' });
  assert.equal(there.status, 200);
  assert.equal(header(there, 'etag'), '"upstream-1"', 'the upstream\'s own validator: there is no snapshot yet');
  assert.match(header(there, 'link') ?? '', /\/calendar\/a\.ics>; rel="subscribe-enhanced-get subscribe-enhanced_get"$/);
  assert.match(header(there, 'vary') ?? '', /Prefer, Sync-Token, If-None-Match/);
});

test('a calendar deleted upstream (404) retires its snapshot for HEAD', async (t) => {
  const { upstream, feed } = await setup(t);
  const etag = etagOf(await send(feed));
  assert.ok(etag);
  assert.equal(etagOf(await send(feed, { method: 'HEAD' })), etag);
  upstream.feeds.delete('a');
  assert.equal((await send(feed)).status, 404);
  const head = await send(feed, { method: 'HEAD' });
  assert.equal(head.status, 404);
  assert.equal(header(head, 'etag'), undefined);
});

// ---------------------------------------------------------------------------------------------
// 9. OPTIONS

test('OPTIONS on a feed path is the upstream\'s answer with Link and Vary added', async (t) => {
  const { upstream, feed } = await setup(t);
  const res = await send(feed, { method: 'OPTIONS' });
  assert.equal(upstream.count('/calendar/a.ics', 'OPTIONS'), 1);
  assert.equal(res.status, 204);
  assert.equal(header(res, 'access-control-allow-methods'), 'GET, HEAD');
  assert.match(header(res, 'link') ?? '', /\/calendar\/a\.ics>; rel="subscribe-enhanced-get subscribe-enhanced_get"$/);
  assert.match(header(res, 'vary') ?? '', /Prefer, Sync-Token, If-None-Match/);
});

test('OPTIONS on a feed path is answered locally, with Allow and Link, only when the upstream fails', async (t) => {
  const app = await startApp(t, `http://127.0.0.1:${await closedPort()}`);
  const res = await send(`${app.url}/calendar/a.ics`, { method: 'OPTIONS' });
  assert.equal(res.status, 204);
  const allow = (header(res, 'allow') ?? '').split(',').map((m) => m.trim());
  for (const method of ['GET', 'HEAD', 'OPTIONS']) assert.ok(allow.includes(method), `Allow has ${method}`);
  assert.match(header(res, 'link') ?? '', /\/calendar\/a\.ics>; rel="subscribe-enhanced-get subscribe-enhanced_get"$/);
});

test('a CORS preflight on a feed path goes to the upstream', async (t) => {
  const { upstream, feed } = await setup(t);
  const res = await send(feed, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
  });
  assert.equal(upstream.count('/calendar/a.ics', 'OPTIONS'), 1);
  assert.equal(res.status, 204);
  assert.equal(header(res, 'access-control-allow-origin'), '*');
});

// ---------------------------------------------------------------------------------------------
// 10. Restart with the durable store

test('a token survives a restart with the sqlite store and gets a delta, not 409', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-feeds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'state.db');
  const upstream = await startUpstream(t);
  const events = bookings(3);
  upstream.feeds.set('a', calendar(events, { timezone: true }));

  const first = await startApp(t, upstream.url, {}, await openStore(path));
  const token = tokenOf(await enhanced(`${first.url}/calendar/a.ics`));
  await first.app.close();

  upstream.feeds.set('a', calendar([...events, { uid: 'after-restart@test', start: '20250501', end: '20250503' }], { timezone: true }));
  const second = await startApp(t, upstream.url, {}, await openStore(path));
  const delta = await enhanced(`${second.url}/calendar/a.ics`, token);
  assert.equal(delta.status, 200);
  assert.deepEqual(parseCalendar(delta.text).live, ['after-restart@test']);
});

// ---------------------------------------------------------------------------------------------
// 11. Exporters that mint UIDs

test('an exporter minting new UIDs on every request keeps its ETag and tokens, and counts re-keyed entities', async (t) => {
  const { upstream, feed, app } = await setup(t);
  upstream.mintUids = true;
  const first = await send(feed);
  const second = await send(feed);
  assert.notEqual(second.text, first.text);
  assert.equal(etagOf(second), etagOf(first));
  const token = tokenOf(await enhanced(feed));
  const res = await enhanced(feed, token);
  assert.equal(res.status, 304);
  assert.ok(await metric(app.url, 'icalpush_feed_rekeyed_entities_total') > 0);
});

// ---------------------------------------------------------------------------------------------
// 12. Feeds are keyed by path and query

test('the same path with different queries is two feeds: a token of one is 409 on the other', async (t) => {
  const { upstream, app } = await setup(t);
  const one = tokenOf(await enhanced(`${app.url}/calendar/a.ics?t=1`));
  await enhanced(`${app.url}/calendar/a.ics?t=2`);
  assert.equal(upstream.count('/calendar/a.ics?t=1'), 1);
  assert.equal(upstream.count('/calendar/a.ics?t=2'), 1);
  assert.equal((await enhanced(`${app.url}/calendar/a.ics?t=1`, one)).status, 304);
  assertConflict(await enhanced(`${app.url}/calendar/a.ics?t=2`, one));
});

// ---------------------------------------------------------------------------------------------
// 13. Metrics

test('metrics count upstream reads by outcome, enhanced answers, saved bytes and held answers', async (t) => {
  const { upstream, feed, app } = await setup(t);
  const series = (labels: string) => `icalpush_feed_answers_total{${labels}}`;
  const reads = (outcome: string) => metric(app.url, `icalpush_feed_upstream_reads_total{outcome="${outcome}"}`);
  const token = tokenOf(await enhanced(feed));
  assert.equal((await enhanced(feed, token)).status, 304);
  upstream.mode = 'empty';
  await send(feed);
  upstream.mode = 'error500';
  await send(feed);
  upstream.mode = 'calendar';
  const events = bookings(3);
  upstream.feeds.set('a', calendar([{ ...events[0]!, summary: 'Changed' }, events[1]!, events[2]!], { timezone: true }));
  assert.equal((await enhanced(feed, token)).status, 200);
  assertConflict(await enhanced(feed, '"data:,garbage"'));

  assert.ok(await reads('changed') >= 2);
  assert.ok(await reads('unchanged') >= 1);
  assert.equal(await reads('held'), 1);
  assert.equal(await reads('not_calendar'), 1);
  assert.equal(await metric(app.url, series('variant="enhanced",answer="delta"')), 1);
  assert.equal(await metric(app.url, series('variant="enhanced",answer="not_modified"')), 1);
  assert.equal(await metric(app.url, series('variant="enhanced",answer="conflict"')), 1);
  assert.ok(await metric(app.url, 'icalpush_feed_bytes_saved_total') > 0);
});

// ---------------------------------------------------------------------------------------------
// 14. Byte cap

for (const declareLength of [false, true]) {
  const how = declareLength ? 'with a declared Content-Length' : 'chunked';
  // A declared length over the cap aborts before reading: that abort must not become an uncaught error.
  test(`a feed body over snapshots.maxBodyBytes (${how}) gets 502 and leaves the snapshot untouched`, async (t) => {
    const { upstream, feed } = await setup(t, { snapshots: { maxBodyBytes: '2KiB' } });
    assert.ok(upstream.feeds.get('a')!.length < 2048);
    const token = tokenOf(await enhanced(feed));
    const etag = etagOf(await send(feed, { method: 'HEAD' }));
    upstream.declareLength = declareLength;
    upstream.feeds.set('a', calendar(bookings(14, 'big', 5), { timezone: true }));
    assert.ok(upstream.feeds.get('a')!.length > 2048);
    assert.equal((await send(feed)).status, 502);
    assert.equal(etagOf(await send(feed, { method: 'HEAD' })), etag);
    upstream.feeds.set('a', calendar(bookings(3), { timezone: true }));
    assert.equal((await enhanced(feed, token)).status, 304);
  });
}

// ---------------------------------------------------------------------------------------------
// 15. maxAge

test('with maxAge 1m a second anonymous GET is answered from the snapshot', async (t) => {
  const { upstream, feed } = await setup(t, { feeds: [{ path: '/calendar/{listing}.ics', maxAge: '1m' }] });
  const first = await send(feed);
  const second = await send(feed);
  assert.equal(upstream.count('/calendar/a.ics'), 1);
  assert.equal(second.status, 200);
  assert.equal(etagOf(second), etagOf(first));
  assert.deepEqual(second.bytes, first.bytes);
});

test('with maxAge 1m a GET with Authorization always reaches the upstream', async (t) => {
  const { upstream, feed } = await setup(t, { feeds: [{ path: '/calendar/{listing}.ics', maxAge: '1m' }] });
  const auth = { authorization: 'Basic dXNlcjpwYXNz' };
  await send(feed, { headers: auth });
  await send(feed, { headers: auth });
  assert.equal(upstream.count('/calendar/a.ics'), 2);
});

test('with the default maxAge 0 every GET reaches the upstream', async (t) => {
  const { upstream, feed } = await setup(t);
  await send(feed);
  await send(feed);
  await send(feed);
  assert.equal(upstream.count('/calendar/a.ics'), 3);
});
