// Real platform exports from the shared corpus (../shared/corpus from the repo root; its README says where
// each file comes from) served in sequence by an upstream this test controls, through the whole app: one
// listing, one peer counting the HEADs it gets, a fake clock set to each file's capture time and advanced
// between steps, each step read by a plain GET of the listing's feed through the sidecar and judged from
// GET /_icalpush/listings/<id>. The same sequences then go through `icalpush replay --json`, which must
// reach the same kind at every step (one decision model). Each with and without `listings.<id>.timezone`.
// Corpus files are read in place, never copied; the variants below are generated from their text here.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { runCli } from '../../src/cli/program.ts';
import type { ReplayLine } from '../../src/cli/replay.ts';
import { addDays } from '../../src/push/decide/dates.ts';
import type { Decision } from '../../src/push/decide/decide.ts';
import { nightsOfRuns } from '../../src/push/decide/night-runs.ts';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const corpusDir = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const skip = !existsSync(corpusDir) && 'no ../shared/corpus';
const corpus = (name: string) => join(corpusDir, name);

const listing = 'villa-corpus';
const zones = [undefined, 'Europe/Rome'] as const;
const zoneLabel = (zone: string | undefined) => zone ?? 'no zone (conservative rule)';

/** One read of the listing's own feed: what the upstream serves, and when (ms). A corpus file is named by
 * its path (read in place by both the app and replay); a generated variant carries its own bytes. */
type Step = { label: string; at: number; path?: string; text?: string };

const bytesOf = (step: Step): Buffer => (step.path !== undefined ? readFileSync(step.path) : Buffer.from(step.text ?? ''));
const at = (iso: string) => Date.parse(iso);

/** What the app recorded for one step: the decisions new since the step before (newest first), and the
 * HEADs the peer had received once the step's notifications (if any) were sent. */
type AppStep = { fresh: Decision[]; heads: number };

type ListingJson = {
  today: { busyFrom: string; freeFrom: string; zone?: string; rule: string };
  snapshot?: { lastRead?: string };
  decisions: Decision[];
  pending: { dueAt: number }[];
};

const emptyCalendar = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//peer//EN\r\nEND:VCALENDAR\r\n';

async function listingOf(url: string): Promise<ListingJson> {
  const res = await request(`${url}/_icalpush/listings/${listing}`);
  assert.equal(res.statusCode, 200);
  return await res.body.json() as ListingJson;
}

/** Serves `steps` one after the other through the real app; each step's outcome. */
async function throughApp(t: TestContext, steps: readonly Step[], zone: string | undefined): Promise<AppStep[]> {
  const first = steps[0] as Step;
  const clock = createFakeClock(first.at);
  let body = bytesOf(first);
  const upstream = await startServer(t, (req, res) => {
    if (req.url?.split('?')[0] !== `/calendar/${listing}.ics`) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(body);
  });
  let heads = 0;
  let headArrived = Promise.withResolvers<void>();
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads += 1;
      res.writeHead(200).end();
      headArrived.resolve();
      return;
    }
    // The peer's own calendar of the listing: nothing, so it explains no night.
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(emptyCalendar);
  });
  const app = await startApp(t, upstream.url, {
    listings: { [listing]: { ...(zone ? { timezone: zone } : {}), peers: [{ name: 'peer', url: `${peer.url}/ical/1.ics` }] } },
    // Steps are days apart on the fake clock: only the test's GETs read the feed.
    push: { watch: 0 },
  }, undefined, clock);

  const out: AppStep[] = [];
  let seen = 0;
  for (const step of steps) {
    clock.advance(step.at - clock.now());
    body = bytesOf(step);
    const res = await request(`${app.url}/calendar/${listing}.ics`);
    assert.equal(res.statusCode, 200, step.label);
    assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(body), `${step.label}: the upstream's bytes, unchanged`);
    // The read journaled its change (if any) before answering; wait until push has decided on it.
    await app.app.feeds.settled();
    let state = await listingOf(app.url);
    const fresh = state.decisions.slice(0, state.decisions.length - seen);
    seen = state.decisions.length;
    // The read reached the engine at the step's time, whether or not it changed anything.
    assert.equal(state.snapshot?.lastRead, new Date(step.at).toISOString(), `${step.label}: read`);
    if (zone) assert.equal(state.today.zone, zone);
    else assert.match(state.today.rule, /conservative/);
    if (state.pending.length > 0) {
      // A primary change queued its HEAD (the outbox is written before the decision is recorded): move the
      // clock to the coalescing window's end and wait for the peer to get it.
      const dueAt = Math.max(...state.pending.map((p) => p.dueAt));
      await clock.whenTimerAt(Math.min(...state.pending.map((p) => p.dueAt)));
      const isSent = (line: Record<string, unknown>) => line.msg === 'push notification sent' && line.listing === listing;
      const sentBefore = app.logs.filter(isSent).length;
      headArrived = Promise.withResolvers<void>();
      clock.advance(Math.max(0, dueAt - clock.now()));
      await headArrived.promise;
      // This step's delivery, not an earlier step's: the outbox entry is gone once it is logged.
      await app.waitForLog(() => app.logs.filter(isSent).length > sentBefore);
      state = await listingOf(app.url);
      assert.deepEqual(state.pending, [], `${step.label}: nothing left to send`);
    }
    out.push({ fresh, heads });
  }
  return out;
}

/** The same steps through `icalpush replay --json`, the peer's empty calendar as evidence. */
async function throughReplay(t: TestContext, steps: readonly Step[], zone: string | undefined): Promise<ReplayLine[]> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-corpus-replay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files: string[] = [];
  for (const [i, step] of steps.entries()) {
    if (step.path !== undefined) files.push(step.path);
    else {
      // Only generated variants are written, outside the project.
      const file = join(dir, `${i}-variant.ics`);
      await writeFile(file, step.text ?? '');
      files.push(file);
    }
  }
  const peer = join(dir, 'peer.ics');
  await writeFile(peer, emptyCalendar);
  const out = { stdout: '', stderr: '' };
  const sink = (key: keyof typeof out) => new Writable({
    write(chunk: Buffer, _encoding, done) {
      out[key] += chunk.toString('utf8');
      done();
    },
  });
  const args = ['replay', '--json', '--peer', peer, ...(zone ? ['--timezone', zone] : []),
    ...steps.flatMap((step) => ['--at', new Date(step.at).toISOString()]), ...files];
  const outcome = await runCli(args, { stdout: sink('stdout'), stderr: sink('stderr'), env: {} });
  assert.ok('exitCode' in outcome);
  assert.equal(outcome.exitCode, 0, out.stderr);
  const lines = out.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as ReplayLine);
  assert.equal(lines.length, steps.length, out.stdout);
  return lines;
}

/** A step as a short string: `kind (rule)`, or `none` when the app recorded no decision (the normalized
 * content did not change: the same bytes, or DTSTAMP churn only). */
const appKind = (step: AppStep) => (step.fresh.length === 0 ? 'none'
  : step.fresh.map((d) => `${d.kind} (${d.rule})`).join(' + '));
const replayKind = (line: ReplayLine) => `${line.kind} (${line.rule})`;

/** The app and replay reach the same kind at every step: a read the app records nothing for (content
 * unchanged) is replay's no-night-change; otherwise one decision of the same kind and rule, with the same
 * nights. */
function assertSameModel(app: readonly AppStep[], replay: readonly ReplayLine[], steps: readonly Step[]): void {
  for (const [i, step] of steps.entries()) {
    const ours = app[i] as AppStep;
    const theirs = replay[i] as ReplayLine;
    const where = `${step.label}: app ${appKind(ours)}, replay ${replayKind(theirs)}`;
    if (ours.fresh.length === 0) {
      assert.equal(theirs.kind, 'no-night-change', where);
      continue;
    }
    assert.equal(ours.fresh.length, 1, where);
    const decision = ours.fresh[0] as Decision;
    assert.equal(decision.kind, theirs.kind, where);
    assert.equal(decision.rule, theirs.rule, where);
    if (theirs.kind !== 'unreadable') assert.deepEqual(decision.nights, theirs.nights, `${where}: nights`);
  }
}

/** Runs `steps` through the app and replay; checks the app's kinds and HEAD counts against `expected`
 * (per step: `none` or `kind (rule)`, and the peer's HEADs so far), and that both agree. */
async function runSequence(t: TestContext, steps: readonly Step[], zone: string | undefined,
  expected: readonly { kind: string; heads: number }[]): Promise<{ app: AppStep[]; replay: ReplayLine[] }> {
  const app = await throughApp(t, steps, zone);
  const replay = await throughReplay(t, steps, zone);
  const table = steps.map((step, i) => `${step.label}: app ${appKind(app[i] as AppStep)} heads ${app[i]?.heads}; ` +
    `replay ${replayKind(replay[i] as ReplayLine)}`).join('\n');
  t.diagnostic(`${zoneLabel(zone)}\n${table}`);
  assert.deepEqual(app.map((s) => ({ kind: appKind(s), heads: s.heads })), expected, table);
  for (const [i, step] of app.entries()) {
    for (const decision of step.fresh) {
      assert.deepEqual(decision.notified, decision.kind === 'primary' ? ['peer'] : [], `${steps[i]?.label}: notified`);
    }
  }
  assertSameModel(app, replay, steps);
  return { app, replay };
}

// Text of exports, as found: CRLF, folded lines, one VEVENT after another.
type Split = { head: string; events: string[]; tail: string };

function splitEvents(text: string): Split {
  const start = text.indexOf('BEGIN:VEVENT');
  const endMarker = 'END:VEVENT\r\n';
  const end = text.lastIndexOf(endMarker) + endMarker.length;
  assert.ok(start > 0 && end > start, 'an export with events');
  return { head: text.slice(0, start), events: text.slice(start, end).split(/(?=BEGIN:VEVENT\r\n)/), tail: text.slice(end) };
}

const joinEvents = ({ head, events, tail }: Split) => head + events.join('') + tail;

/** A VALUE=DATE property of an event, as YYYYMMDD. */
function dateOf(event: string, name: 'DTSTART' | 'DTEND'): string {
  const match = new RegExp(`^${name};VALUE=DATE:(\\d{8})\\r$`, 'm').exec(event);
  assert.ok(match, `${name} in ${event}`);
  return match[1] as string;
}

const setDate = (event: string, name: 'DTSTART' | 'DTEND', yyyymmdd: string) =>
  event.replace(new RegExp(`^${name};VALUE=DATE:\\d{8}\\r$`, 'm'), `${name};VALUE=DATE:${yyyymmdd}\r`);
const compact = (date: string) => date.replaceAll('-', '');
const dashed = (yyyymmdd: string) => `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6)}`;
/** Airbnb's DTSTAMP is the fetch time, the same on every event. */
const restamp = (text: string, ms: number) => text.replaceAll(/^DTSTAMP:\d{8}T\d{6}Z\r$/gm,
  `DTSTAMP:${new Date(ms).toISOString().replaceAll(/[-:]|\.\d{3}/g, '')}\r`);

// (a) Booking.com: an hourly pair differing only in DTSTAMP, then the second read again a day later.
const bookingT0 = corpus('str-booking/booking-com_dtstamp-churn_t0_2026-08-22T2012Z.ics');
const bookingT1 = corpus('str-booking/booking-com_dtstamp-churn_t1_2026-08-22T2112Z.ics');

for (const zone of zones) {
  test(`(a) Booking.com DTSTAMP churn, then the same bytes a day later: never primary, no HEAD — ${zoneLabel(zone)}`,
    { skip }, async (t) => {
      const steps: Step[] = [
        { label: 't0 2026-08-22T20:12Z', at: at('2026-08-22T20:12:00Z'), path: bookingT0 },
        { label: 't1 2026-08-22T21:12Z (DTSTAMP only)', at: at('2026-08-22T21:12:00Z'), path: bookingT1 },
        // A day later the stay in progress (08-22..08-31) has a night fewer ahead, and the far CLOSED block
        // (2027-02-01..2028-02-22) is a day nearer: neither is a change of the nights ahead.
        { label: 't1 again 2026-08-23T21:12Z', at: at('2026-08-23T21:12:00Z'), path: bookingT1 },
      ];
      const { replay } = await runSequence(t, steps, zone, [
        { kind: 'no-night-change (first-read)', heads: 0 },
        { kind: 'none', heads: 0 },
        { kind: 'none', heads: 0 },
      ]);
      assert.deepEqual(replay.map(replayKind), [
        'no-night-change (first-read)', 'no-night-change (nights-unchanged)', 'no-night-change (nights-unchanged)',
      ]);
    });
}

// (b) Airbnb: the capture, then a day later its far "Not available" block one day longer and its expired
// stays gone (the window roll), then bookings.
const airbnbFile = corpus('str-airbnb/airbnb-1.0_crlf_dtstamp_2025-10-23.ics');

/** The Airbnb export as it would read a day later: stays ended by `today` gone, its last "Not available"
 * block (the booking-window edge) ending a day later, DTSTAMP the new fetch time. */
function airbnbNextDay(text: string, today: string, ms: number): string {
  const split = splitEvents(text);
  const blocks = split.events.filter((e) => e.includes('SUMMARY:Airbnb (Not available)'));
  const edge = blocks.reduce((a, b) => (dateOf(a, 'DTSTART') > dateOf(b, 'DTSTART') ? a : b));
  const edgeEnd = dateOf(edge, 'DTEND');
  const events = split.events
    .filter((e) => dateOf(e, 'DTEND') > compact(today))
    .map((e) => (e === edge ? setDate(e, 'DTEND', compact(addDays(dashed(edgeEnd), 1))) : e));
  assert.equal(split.events.length - events.length, 2, 'the two stays ended by then expire');
  return restamp(joinEvents({ ...split, events }), ms);
}

/** `text` with one more Airbnb reservation, `from`..`to` (check-out), cloned from its first one. */
function withBooking(text: string, from: string, to: string, uid: string): string {
  const split = splitEvents(text);
  const template = split.events.find((e) => e.includes('SUMMARY:Reserved\r\n'));
  assert.ok(template);
  const booking = setDate(setDate(template, 'DTSTART', compact(from)), 'DTEND', compact(to))
    .replace(/^UID:.*\r$/m, `UID:1418fb94e984-${uid}@airbnb.com\r`);
  return joinEvents({ ...split, events: [...split.events, booking] });
}

for (const zone of zones) {
  test(`(b) Airbnb window roll is no primary; a booking in free nights is, with exactly one HEAD — ${zoneLabel(zone)}`,
    { skip }, async (t) => {
      const original = readFileSync(airbnbFile, 'utf8');
      const day2 = at('2025-10-24T12:00:00Z');
      const rolled = airbnbNextDay(original, '2025-10-24', day2);
      // 200 days after the second read: inside the edge block (2026-04-01..), whose nights are busy already.
      const far = addDays('2025-10-24', 200);
      assert.equal(far, '2026-05-12');
      const inBlock = withBooking(rolled, far, addDays(far, 3), '00000000000000000000000000000200');
      // The furthest free nights before the edge block (2026-03-15..2026-03-31): 147 days ahead.
      const inGap = withBooking(inBlock, '2026-03-20', '2026-03-24', '00000000000000000000000000000147');
      const steps: Step[] = [
        { label: 'capture 2025-10-23', at: at('2025-10-23T12:00:00Z'), path: airbnbFile },
        { label: 'a day later: edge block +1 night, expired stays gone', at: day2, text: rolled },
        { label: `booking ${far}/+3 (200 days ahead, inside the edge block)`, at: at('2025-10-24T15:00:00Z'), text: inBlock },
        { label: 'booking 2026-03-20/2026-03-24 (147 days ahead, free nights)', at: at('2025-10-24T16:00:00Z'), text: inGap },
      ];
      const { app } = await runSequence(t, steps, zone, [
        { kind: 'no-night-change (first-read)', heads: 0 },
        { kind: 'roll (window-roll)', heads: 0 },
        { kind: 'no-night-change (nights-unchanged)', heads: 0 },
        { kind: 'primary (unexplained-nights)', heads: 1 },
      ]);
      const roll = app[1]?.fresh[0] as Decision;
      assert.deepEqual(roll.nights, { added: ['2026-10-23/2026-10-24'], removed: [] });
      // Without a zone the freed night of 10-23 (a stay that ended) is still "today" somewhere: it passed.
      if (!zone) assert.deepEqual(roll.passed, { added: [], removed: ['2025-10-23/2025-10-24'] });
      else assert.equal(roll.passed, undefined);
      const booking = app[3]?.fresh[0] as Decision;
      assert.deepEqual(booking.nights, { added: ['2026-03-20/2026-03-24'], removed: [] });
    });
}

// (c) The Airbnb merge of six listings, taken as one listing's feed: the full capture, then the capture in
// which one listing's export was an HTTP 500 JSON body (its 14 events gone), then the full one again.
const merged = corpus('str-airbnb/airbnb-1.0_merged-6-listings_2026-08-22.ics');
const merged500 = corpus('str-airbnb/airbnb-1.0_merged_http500-json-body_2026-08-21.ics');

// The nights the HTTP-500 read frees (counted from 2026-08-22): ten only listing 1193566712390606838 had,
// and 2026-09-21, booked between the two captures (the 500 capture is the older one, read after).
const freedBy500 = ['2026-09-21/2026-09-22', '2026-09-23/2026-09-24', '2026-10-12/2026-10-13', '2027-02-28/2027-03-03',
  '2027-07-31/2027-08-05'];

for (const zone of zones) {
  test(`(c) one merged listing's HTTP 500 body drops 14 of 176 events: below the hold, its lost nights are primary — ` +
    `${zoneLabel(zone)}`, { skip }, async (t) => {
    // SPEC "Push": the hold applies when a read loses more than hold.fraction (0.5) of the future busy nights
    // or of the events; here 16 of 176 events and 11 of 224 nights: no drop, so the freed nights are news.
    const steps: Step[] = [
      { label: 'full merge 2026-08-22T20:25Z', at: at('2026-08-22T20:25:23Z'), path: merged },
      { label: 'HTTP-500 splice an hour later', at: at('2026-08-22T21:25:00Z'), path: merged500 },
      { label: 'full merge again an hour later', at: at('2026-08-22T22:25:00Z'), path: merged },
    ];
    const { app } = await runSequence(t, steps, zone, [
      { kind: 'no-night-change (first-read)', heads: 0 },
      { kind: 'primary (unexplained-nights)', heads: 1 },
      { kind: 'primary (unexplained-nights)', heads: 2 },
    ]);
    const lost = app[1]?.fresh[0] as Decision;
    assert.deepEqual(lost.nights, { added: [], removed: freedBy500 });
    assert.equal(nightsOfRuns(lost.nights.removed).length, 11);
    const back = app[2]?.fresh[0] as Decision;
    assert.deepEqual(back.nights, { added: freedBy500, removed: [] });
  });
}

// (d) Every STR export read twice, a day apart, the same bytes: nothing to push.
const strFiles = [
  // Capture time: the one in the file name where it has one (replay's convention: a date alone is 12:00Z),
  // else its DTSTAMP, else a date before its events.
  { path: 'str-airbnb/airbnb-0.8.8_blank-lines_dtend-before-dtstart.ics', at: '2025-02-20T12:00:00Z' },
  { path: 'str-airbnb/airbnb-1.0_crlf_dtstamp_2025-10-23.ics', at: '2025-10-23T12:00:00Z' },
  { path: 'str-airbnb/airbnb-1.0_merged-6-listings_2026-08-22.ics', at: '2026-08-22T12:00:00Z' },
  { path: 'str-airbnb/airbnb-1.0_merged_http500-json-body_2026-08-21.ics', at: '2026-08-21T12:00:00Z' },
  { path: 'str-booking/booking-com_dtstamp-churn_t0_2026-08-22T2012Z.ics', at: '2026-08-22T20:12:00Z' },
  { path: 'str-booking/booking-com_dtstamp-churn_t1_2026-08-22T2112Z.ics', at: '2026-08-22T21:12:00Z' },
  { path: 'str-direct/icloud-caldav_owner-blocks_historic-vtimezone.ics', at: '2026-09-17T20:10:20Z' },
  { path: 'str-vrbo-homeaway/abritel-homeaway_2020-07_extracted.ics', at: '2020-07-03T19:55:26Z' },
];

test('(d) the table above lists every str-* corpus file', { skip }, () => {
  const found = readdirSync(corpusDir).filter((dir) => dir.startsWith('str-'))
    .flatMap((dir) => readdirSync(join(corpusDir, dir)).filter((f) => f.endsWith('.ics')).map((f) => `${dir}/${f}`));
  assert.deepEqual(found.sort(), strFiles.map((f) => f.path).sort());
});

for (const zone of zones) {
  for (const file of strFiles) {
    test(`(d) ${basename(file.path)} read twice a day apart, same bytes: never primary — ${zoneLabel(zone)}`,
      { skip }, async (t) => {
        const path = corpus(file.path);
        const first = at(file.at);
        const steps: Step[] = [
          { label: 'first read', at: first, path },
          { label: 'a day later', at: first + 24 * 60 * 60 * 1000, path },
        ];
        const { replay } = await runSequence(t, steps, zone, [
          { kind: 'no-night-change (first-read)', heads: 0 },
          { kind: 'none', heads: 0 },
        ]);
        assert.deepEqual(replay.map(replayKind), ['no-night-change (first-read)', 'no-night-change (nights-unchanged)']);
      });
  }
}

// (e) Regression: an unchanged read keeps the stored nights of the last change, and the roll limit was
// counted from that change instead of the previous read. Here the edge block stands still for 5 days (read
// each day: same bytes), then its end jumps 6 days in one day: each end may move by at most the days elapsed
// since the previous read + 2 = 3 (SPEC "Push"), so it is primary, in the app as in replay.
for (const zone of zones) {
  test(`(e) an edge block still for 5 days then 6 days longer in one day is primary, as replay says — ${zoneLabel(zone)}`,
    { skip },
    async (t) => {
      const original = readFileSync(airbnbFile, 'utf8');
      const split = splitEvents(original);
      const edge = split.events.at(-1) as string;
      assert.equal(dateOf(edge, 'DTEND'), '20261023');
      const jumped = joinEvents({ ...split, events: split.events.map((e) => (e === edge ? setDate(e, 'DTEND', '20261029') : e)) });
      const days = [23, 24, 25, 26, 27, 28];
      const steps: Step[] = [
        ...days.map((d) => ({ label: `2025-10-${d} same bytes`, at: at(`2025-10-${d}T12:00:00Z`), path: airbnbFile })),
        { label: '2025-10-29 edge block end +6 days', at: at('2025-10-29T12:00:00Z'), text: jumped },
      ];
      await runSequence(t, steps, zone, [
        { kind: 'no-night-change (first-read)', heads: 0 },
        ...days.slice(1).map(() => ({ kind: 'none', heads: 0 })),
        { kind: 'primary (unexplained-nights)', heads: 1 },
      ]);
    });
}
