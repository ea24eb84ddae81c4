// SPEC "Deltas are valid iCalendar" (issue 11): a tombstone keeps `DTSTART;TZID=…` after its event, and
// often its VTIMEZONE, left the feed; python-icalendar then read a floating time. A tombstone now travels
// with the VTIMEZONE of the last snapshot that had it, or has its DTSTART in UTC; ical.js checks each body.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import ICAL from 'ical.js';
import { request } from 'undici';
import { createHistoryStore } from '../../src/feeds/history-store.ts';
import {
  applyAnalysis, calendarText, capTombstones, changesSince, type FeedHistory, pruneTombstones,
} from '../../src/feeds/history.ts';
import { createLogger } from '../../src/log.ts';
import { openStore } from '../../src/store/open-store.ts';
import { packCalendar } from '../../src/work/feed-tasks.ts';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';
import { assertValidICalendar, parseICalendar } from '../helpers/valid-icalendar.ts';

const feedsDir = new URL('../fixtures/feeds/', import.meta.url);
const fixture = (name: string) => readFile(new URL(`${name}.ics`, feedsDir), 'utf8');
const t0 = Date.UTC(2025, 5, 1);
const day = 86_400_000;
const logger = createLogger({ level: 'silent' });

/** `text` without the VEVENT of `uid` and without any VTIMEZONE: the event and its zone left together. */
function withoutEventAndZones(text: string, uid: string): string {
  const blocks = text.split(/(?=BEGIN:VEVENT\r\n)|(?<=END:VEVENT\r\n)|(?=BEGIN:VTIMEZONE\r\n)|(?<=END:VTIMEZONE\r\n)/);
  return blocks.filter((b) => !b.startsWith('BEGIN:VTIMEZONE') && !(b.startsWith('BEGIN:VEVENT') && b.includes(uid)))
    .join('');
}

/** A calendar of these VTIMEZONE and VEVENT lines (CRLF). */
function calendar(...pieces: string[][]): string {
  return `${['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//icalpush tests//zones//EN', ...pieces.flat(), 'END:VCALENDAR']
    .join('\r\n')}\r\n`;
}

function event(uid: string, dtstart: string, summary = 'Reserved'): string[] {
  return ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20250601T000000Z', dtstart, `SUMMARY:${summary}`, 'END:VEVENT'];
}

const stays = [event('stay-1@test', 'DTSTART;VALUE=DATE:20250801'), event('stay-2@test', 'DTSTART;VALUE=DATE:20250810')];

/** A VTIMEZONE at a fixed offset all year (`+0100`), named `tzid`; `tzname` tells two versions apart. */
function fixedZone(tzid: string, offset: string, tzname = 'X'): string[] {
  return ['BEGIN:VTIMEZONE', `TZID:${tzid}`, 'BEGIN:STANDARD', 'DTSTART:19700101T000000', `TZOFFSETFROM:${offset}`,
    `TZOFFSETTO:${offset}`, `TZNAME:${tzname}`, 'END:STANDARD', 'END:VTIMEZONE'];
}

const apply = (history: FeedHistory | undefined, text: string, at: number) =>
  applyAnalysis(history, packCalendar(Buffer.from(text)), at).history;

/** The delta from `since` as the sidecar assembles it. */
function deltaBody(history: FeedHistory, since: number): string {
  const changes = changesSince(history, { version: since });
  return calendarText(history, [...changes.entities, ...changes.tombstones], changes.timezones);
}

/** The STATUS:DELETED component of `uid` in a body, as ical.js reads it. */
function tombstoneIn(text: string, uid: string): ICAL.Component {
  const found = parseICalendar(text).getAllSubcomponents()
    .find((c) => c.getFirstPropertyValue('uid') === uid && c.getFirstPropertyValue('status') === 'DELETED');
  assert.ok(found, `a tombstone for ${uid}`);
  return found;
}

/** The tombstone's DTSTART as ical.js reads it: its zone's TZID and the UTC instant (ISO). */
function dtstartOf(stone: ICAL.Component): { tzid: string | undefined; utc: string } {
  const time = stone.getFirstPropertyValue('dtstart');
  assert.ok(time instanceof ICAL.Time, 'DTSTART is a date-time');
  return { tzid: time.zone?.tzid, utc: new Date(time.toUnixTime() * 1000).toISOString() };
}

/** An upstream serving `body.text` at /calendar/a.ics, and the app in front of it. */
async function sidecar(t: TestContext, first: string) {
  const body = { text: first };
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' });
    res.end(body.text);
  });
  const app = await startApp(t, upstream.url);
  const feed = `${app.url}/calendar/a.ics`;
  const get = async (headers: Record<string, string>) => {
    const res = await request(feed, { headers });
    return { status: res.statusCode, token: res.headers['sync-token'], etag: res.headers.etag, text: await res.body.text() };
  };
  return { body, get };
}

test('a tombstone whose Custom Zone Lisbon VTIMEZONE left with its event carries it; ical.js reads 19:00Z', async (t) => {
  const feed = await fixture('custom-tzid-vtimezone-leaves-with-event');
  const { body, get } = await sidecar(t, feed);
  const first = await get({ prefer: 'subscribe-enhanced-get' });
  assert.equal(first.status, 200);
  assertValidICalendar(first.text, 'full answer');
  body.text = withoutEventAndZones(feed, 'lisbon-dinner@custom.example');
  assert.doesNotMatch(body.text, /Custom Zone Lisbon/);

  const delta = await get({ prefer: 'subscribe-enhanced-get', 'sync-token': String(first.token) });
  assert.equal(delta.status, 200);
  assertValidICalendar(delta.text, 'delta');
  const stone = tombstoneIn(delta.text, 'lisbon-dinner@custom.example');
  assert.deepEqual(dtstartOf(stone), { tzid: 'Custom Zone Lisbon', utc: '2025-07-15T19:00:00.000Z' });
});

test('a tombstone whose Windows-named VTIMEZONE left with its event carries it; ical.js reads 09:00Z', async (t) => {
  const feed = await fixture('outlook-windows-tzid-vtimezone-leaves-with-event');
  const { body, get } = await sidecar(t, feed);
  const first = await get({ prefer: 'subscribe-enhanced-get' });
  assertValidICalendar(first.text, 'full answer');
  body.text = withoutEventAndZones(feed, '7A1B2C3D4E5FD9');
  assert.doesNotMatch(body.text, /W\. Europe Standard Time/);

  const delta = await get({ prefer: 'subscribe-enhanced-get', 'sync-token': String(first.token) });
  assert.equal(delta.status, 200);
  assertValidICalendar(delta.text, 'delta');
  const [stone] = parseICalendar(delta.text).getAllSubcomponents('vevent');
  assert.ok(stone);
  assert.equal(stone.getFirstPropertyValue('status'), 'DELETED');
  assert.deepEqual(dtstartOf(stone), { tzid: 'W. Europe Standard Time', utc: '2025-01-13T09:00:00.000Z' });
});

test('return=minimal deltas and limited pages carry a left tombstone zone too', async (t) => {
  const feed = await fixture('custom-tzid-vtimezone-leaves-with-event');
  const { body, get } = await sidecar(t, feed);
  const first = await get({ prefer: 'subscribe-enhanced-get' });
  body.text = withoutEventAndZones(feed, 'lisbon-dinner@custom.example').replace('SUMMARY:Reserved', 'SUMMARY:Owner');

  const minimal = await get({ prefer: 'return=minimal', 'if-none-match': String(first.etag) });
  assert.equal(minimal.status, 200);
  assertValidICalendar(minimal.text, 'return=minimal delta');
  tombstoneIn(minimal.text, 'lisbon-dinner@custom.example');

  // Two changes (stay-1 modified, the dinner removed), one a page: each page is valid on its own.
  let token = String(first.token);
  const zonesPerPage: number[] = [];
  for (let page = 0; page < 5; page += 1) {
    const res = await get({ prefer: 'subscribe-enhanced-get, limit=1', 'sync-token': token });
    if (res.status === 304) break;
    assertValidICalendar(res.text, `page ${page}`);
    zonesPerPage.push(parseICalendar(res.text).getAllSubcomponents('vtimezone').length);
    token = String(res.token);
  }
  // Only the page with the tombstone needs the zone.
  assert.deepEqual(zonesPerPage.sort(), [0, 1]);
});

test('a tombstone whose IANA-named zone no snapshot defined has its DTSTART in UTC by that zone\'s rules', () => {
  const first = apply(undefined, calendar(event('gone@test', 'DTSTART;TZID=Europe/Lisbon:20250715T200000'), ...stays), t0);
  const second = apply(first, calendar(...stays), t0 + day);
  const body = deltaBody(second, 1);
  assertValidICalendar(body, 'delta');
  assert.match(second.tombstones.get('gone@test')?.text ?? '', /\r\nDTSTART:20250715T190000Z\r\n/);
  assert.deepEqual(dtstartOf(tombstoneIn(body, 'gone@test')), { tzid: 'UTC', utc: '2025-07-15T19:00:00.000Z' });
});

test('a tombstone whose zone is nowhere defined nor known keeps its wall-clock digits as UTC', () => {
  const dtstart = 'DTSTART;X-NOTE=kept;TZID="Custom Island Time":20250715T200000';
  const first = apply(undefined, calendar(event('gone@test', dtstart), ...stays), t0);
  const second = apply(first, calendar(...stays), t0 + day);
  assertValidICalendar(deltaBody(second, 1), 'delta');
  // The other parameters stay; a zone that nothing defines cannot give a better instant.
  assert.match(second.tombstones.get('gone@test')?.text ?? '', /\r\nDTSTART;X-NOTE=kept:20250715T200000Z\r\n/);
  assert.equal(second.tombstones.get('gone@test')?.tzid, undefined);
  assert.equal(second.zones.size, 0);
});

test('a tombstone whose zone is still in the frame is sent with the frame\'s VTIMEZONE once', () => {
  const zone = fixedZone('Custom Plus One', '+0100');
  const first = apply(undefined, calendar(zone, event('gone@test', 'DTSTART;TZID=Custom Plus One:20250715T200000'), ...stays), t0);
  const second = apply(first, calendar(zone, ...stays), t0 + day);
  const changes = changesSince(second, { version: 1 });
  assert.deepEqual(changes.timezones, []);
  const body = deltaBody(second, 1);
  assertValidICalendar(body, 'delta');
  assert.equal(parseICalendar(body).getAllSubcomponents('vtimezone').length, 1);
  assert.equal(dtstartOf(tombstoneIn(body, 'gone@test')).utc, '2025-07-15T19:00:00.000Z');
});

test('a TZID with commas (escaped in the VTIMEZONE, quoted in DTSTART) finds its VTIMEZONE when it left', () => {
  const zone = fixedZone('(UTC+01:00) Amsterdam\\, Berlin', '+0100');
  const dtstart = 'DTSTART;TZID="(UTC+01:00) Amsterdam, Berlin":20250715T200000';
  const first = apply(undefined, calendar(zone, event('gone@test', dtstart), ...stays), t0);
  const second = apply(first, calendar(...stays), t0 + day);
  const body = deltaBody(second, 1);
  assertValidICalendar(body, 'delta');
  assert.deepEqual(dtstartOf(tombstoneIn(body, 'gone@test')),
    { tzid: '(UTC+01:00) Amsterdam, Berlin', utc: '2025-07-15T19:00:00.000Z' });
});

test('a remembered VTIMEZONE is the one of the last snapshot that had it', () => {
  const dtstart = 'DTSTART;TZID=Custom Shifting:20250715T200000';
  const first = apply(undefined, calendar(fixedZone('Custom Shifting', '+0100', 'OLD'), event('gone@test', dtstart), ...stays), t0);
  // The event goes; the zone stays a while and is redefined (+0200), then goes too.
  const second = apply(first, calendar(fixedZone('Custom Shifting', '+0200', 'NEW'), ...stays), t0 + day);
  const third = apply(second, calendar(...stays), t0 + 2 * day);
  const changes = changesSince(third, { version: 1 });
  assert.equal(changes.timezones.length, 1);
  assert.match(changes.timezones[0] ?? '', /TZNAME:NEW/);
  const body = deltaBody(third, 1);
  assertValidICalendar(body, 'delta');
  assert.equal(dtstartOf(tombstoneIn(body, 'gone@test')).utc, '2025-07-15T18:00:00.000Z');
});

test('a remembered VTIMEZONE goes with the last tombstone naming it: retention, the cap, the event coming back', () => {
  const zone = fixedZone('Custom Plus One', '+0100');
  const gone = (uid: string) => event(uid, 'DTSTART;TZID=Custom Plus One:20250715T200000', uid);
  const first = apply(undefined, calendar(zone, gone('a@test'), gone('b@test'), ...stays), t0);
  const second = apply(first, calendar(gone('b@test'), ...stays), t0 + day);
  const third = apply(second, calendar(...stays), t0 + 2 * day);
  assert.deepEqual([...third.zones.keys()], ['Custom Plus One']);
  // a's tombstone past retention: b's still names the zone.
  const pruned = pruneTombstones(third, t0 + 2 * day + 1, day);
  assert.deepEqual([...pruned.tombstones.keys()], ['b@test']);
  assert.equal(pruned.zones.size, 1);
  assert.equal(pruneTombstones(third, t0 + 10 * day, day).zones.size, 0);
  assert.equal(capTombstones(third, 1).zones.size, 1);
  assert.equal(capTombstones(third, 0).zones.size, 0);
  // Both events come back (without their zone): no tombstone names it any more.
  const back = apply(third, calendar(gone('a@test'), gone('b@test'), ...stays), t0 + 3 * day);
  assert.equal(back.tombstones.size, 0);
  assert.equal(back.zones.size, 0);
});

test('a history with remembered zones saves and loads back equal', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const zone = fixedZone('Custom Plus One', '+0100');
  const first = apply(undefined, calendar(zone, event('gone@test', 'DTSTART;TZID=Custom Plus One:20250715T200000'), ...stays), t0);
  const second = apply(first, calendar(...stays), t0 + day);
  assert.equal(second.zones.size, 1);
  await createHistoryStore(store, logger).save('/f.ics', second, undefined, 60 * day);
  assert.deepEqual(await createHistoryStore(store, logger).load('/f.ics'), second);
});

test('a history saved before zones were kept loads with its tombstones\' zones from the frame, or DTSTART in UTC', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const kept = fixedZone('Custom Plus One', '+0100');
  const first = apply(undefined, calendar(kept, fixedZone('Custom Minus Two', '-0200'),
    event('framed@test', 'DTSTART;TZID=Custom Plus One:20250715T200000'),
    event('left@test', 'DTSTART;TZID=Custom Minus Two:20250715T200000'), ...stays), t0);
  const second = apply(first, calendar(kept, ...stays), t0 + day);
  await createHistoryStore(store, logger).save('/f.ics', second, undefined, 60 * day);
  // What the code before this change wrote: the same pages, a head without `zones`, and tombstones
  // keeping their TZIDs.
  const heads = store.namespace('feed_history');
  const head = await heads.get<Record<string, unknown>>('/f.ics');
  assert.ok(head && Array.isArray(head.zones));
  delete head.zones;
  await heads.set('/f.ics', head, 60 * day);

  const loaded = await createHistoryStore(store, logger).load('/f.ics');
  assert.ok(loaded);
  assert.deepEqual([...loaded.zones.keys()], ['Custom Plus One']);
  assert.match(loaded.tombstones.get('left@test')?.text ?? '', /\r\nDTSTART:20250715T200000Z\r\n/);
  assert.equal(loaded.tombstones.get('framed@test')?.tzid, 'Custom Plus One');
  const body = deltaBody(loaded, 1);
  assertValidICalendar(body, 'delta of the loaded history');
  assert.equal(dtstartOf(tombstoneIn(body, 'framed@test')).utc, '2025-07-15T19:00:00.000Z');
});

// The upstream is valid at every read (each zone its events use is defined), zones and events come and go:
// every delta from every token the client could hold is valid iCalendar.
test('property: every delta of a valid upstream is valid iCalendar, whatever zones come and go', () => {
  const zones = ['Custom A', 'Custom B', 'W. Europe Standard Time'];
  const read = fc.record({
    events: fc.uniqueArray(fc.record({ uid: fc.integer({ min: 0, max: 5 }), zone: fc.integer({ min: 0, max: 3 }) }),
      { selector: (e) => e.uid, maxLength: 5 }),
    spare: fc.subarray([0, 1, 2]),
    offset: fc.integer({ min: 0, max: 1 }),
  });
  const reads = fc.array(read, { minLength: 1, maxLength: 8 });
  fc.assert(fc.property(reads, fc.integer({ min: 0, max: 3 }), (steps, cap) => {
    let history: FeedHistory | undefined;
    for (const [i, { events, spare, offset }] of steps.entries()) {
      // Zone 3 stands for a UTC DTSTART; spare zones are defined and used by no event.
      const used = new Set([...events.map((e) => e.zone).filter((z) => z < 3), ...spare]);
      const text = calendar(
        ...[...used].map((z) => fixedZone(zones[z]!, offset === 0 ? '+0100' : '-0300', `V${i}`)),
        ...events.map(({ uid, zone }) => event(`e${uid}@test`, zone < 3
          ? `DTSTART;TZID="${zones[zone]}":2025071${uid}T200000` : `DTSTART:2025071${uid}T200000Z`)),
      );
      const options = { maxTombstones: 2 + cap };
      history = applyAnalysis(history, packCalendar(Buffer.from(text)), t0 + i * day, options).history;
      for (let since = history.floor; since < history.version; since += 1) {
        assertValidICalendar(deltaBody(history, since), `read ${i}, delta from ${since}`);
      }
    }
  }), { numRuns: 150 });
});
