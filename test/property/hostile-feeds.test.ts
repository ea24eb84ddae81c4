// Property (SPEC "Guarantees": real feeds are messy, and nothing a feed contains can stall the sidecar): an
// upstream serving a random hostile body, built from a grammar of nasty pieces (deep BEGIN/END nesting,
// absurd RRULEs, unknown TZIDs, garbage dates, duplicate UIDs, lines without a colon, lone CR and mixed line
// ends, a BOM, Latin-1 bytes, 100 KB values, thousands of events, truncation, lower-case keywords, binary
// junk) never gets a 5xx other than 502/504 from the real app, never crashes it, has a plain 200 carry its
// bytes unchanged, and never holds the event loop long. HOSTILE_SEED=n (and HOSTILE_PATH=p, as fast-check
// reports a failure) replays a run.
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { startApp } from '../helpers/app.ts';
import { startServer } from '../helpers/servers.ts';

// HOSTILE_RUNS=n runs more (or fewer) bodies than CI does.
const numRuns = Number(process.env.HOSTILE_RUNS ?? 60);
// The longest event-loop delay a run may show (the app, the fake upstream and the client share this
// thread). SPEC asks ~20 ms per piece of work on the request path. Measured on 2 cores: runs here stay
// under ~40 ms when the machine is quiet, ~100 ms beside other test processes; applying a changed feed
// is one synchronous block that grows ~4-5 ms per 1,000 entities (history.ts applyAnalysis and the
// history pages' serialization), ~100-140 ms at the 25,000-entity cap, more than these bodies hold.
const maxLoopDelayMs = 250;
const seed = process.env.HOSTILE_SEED === undefined
  ? Math.floor(Math.random() * 2 ** 31)
  : Number(process.env.HOSTILE_SEED);

const listing = 'hostile';
const feedPath = `/calendar/${listing}.ics`;
const dayMs = 86_400_000;
const today = Date.now();
const date = (offset: number) => new Date(today + offset * dayMs).toISOString().slice(0, 10).replaceAll('-', '');

/** A piece of the body: text (UTF-8) or raw bytes. */
type Piece = string | Uint8Array;
/** A generated body and what it is made of, for the failure message and the timing table. */
type Hostile = {
  kinds: string[];
  pieces: Piece[];
  /** The line end of the frame, and of each piece: a body mixes them. */
  eol: string;
  eols: string[];
  bom: boolean;
  lower: boolean;
  /** `missing`: no END:VCALENDAR; a number: cut at that per mille of the length. */
  end: 'whole' | 'missing' | number;
  /** False: a drop is applied at once, so the hostile content itself is versioned and classified. */
  hold: boolean;
};

// ---------------------------------------------------------------------------------------------
// The grammar

const eol = fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', '\n\r');
const hugeLength = 100 * 1024;

const absurdNumber = fc.constantFrom('0', '1', '-1', '2', '7', '366', '-366', '2147483647', '-2147483648', '4294967296',
  '99999999999999999999', '1e9', '0x10', 'NaN', 'x', '');
const freq = fc.constantFrom('SECONDLY', 'MINUTELY', 'HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY', 'secondly',
  'FORTNIGHTLY', '');
const byPart = fc.tuple(
  fc.constantFrom('BYSETPOS', 'BYYEARDAY', 'BYMONTHDAY', 'BYDAY', 'BYHOUR', 'BYMINUTE', 'BYSECOND', 'BYWEEKNO',
    'BYMONTH', 'WKST', 'BYEASTER', 'X-NAME', 'RSCALE', 'SKIP'),
  fc.oneof(
    absurdNumber,
    fc.constantFrom('53SU', '-1MO', '+5FR', '-53TH', 'MO,TU,WE,TH,FR,SA,SU', '1,-1,2,-2,3,-3,366,-366', 'a,b,,c', '0SU',
      'SU'.repeat(40), Array.from({ length: 366 }, (_, i) => i + 1).join(','),
      Array.from({ length: 60 }, (_, i) => i).join(',')),
  ),
);
const until = fc.constantFrom('99991231T235959Z', '99991231', '19000101', '20991231T000000Z', '20250230T250000Z',
  'garbage', '', `${date(-1)}T000000Z`);
const rrule = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    freq,
    count: fc.option(absurdNumber, { nil: undefined }),
    interval: fc.option(absurdNumber, { nil: undefined }),
    until: fc.option(until, { nil: undefined }),
    by: fc.array(byPart, { maxLength: 6 }),
  }).map(({ freq: f, count, interval, until: u, by }) => {
    const parts = [`FREQ=${f}`];
    if (count !== undefined) parts.push(`COUNT=${count}`);
    if (interval !== undefined) parts.push(`INTERVAL=${interval}`);
    if (u !== undefined) parts.push(`UNTIL=${u}`);
    for (const [name, value] of by) parts.push(`${name}=${value}`);
    return `RRULE:${parts.join(';')}`;
  }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map((s) => `RRULE:${s}`) },
);

const tzid = fc.constantFrom('Europe/Rome', 'America/New_York', 'Mars/Olympus_Mons', '"Eastern Standard Time"',
  '/freeassociation.sourceforge.net/Tzfile/Europe/Rome', 'UTC+25', '', '"unterminated', 'Etc/GMT-14');
const dateValue = fc.oneof(
  fc.integer({ min: -800, max: 800 }).map((d) => date(d)),
  fc.integer({ min: -800, max: 800 }).map((d) => `${date(d)}T120000`),
  fc.integer({ min: -800, max: 800 }).map((d) => `${date(d)}T000000Z`),
  fc.constantFrom('00000000', '99999999T999999Z', '2024-13-45', '20241345T256161', 'abc', '', '1', '0001010',
    '19700101T000000Z', '99991231T235959Z', '20250101T120000+0100', `${'9'.repeat(40)}`),
);
const dateProperty = (name: string) => fc.tuple(
  fc.constantFrom('', ';VALUE=DATE', ';VALUE=DATE-TIME', ';VALUE=PERIOD', ';value=date'),
  fc.option(tzid, { nil: undefined }),
  dateValue,
).map(([value, zone, v]) => `${name}${value}${zone === undefined ? '' : `;TZID=${zone}`}:${v}`);

const uid = fc.oneof(
  fc.constantFrom('dup@hostile', 'dup@hostile', 'other-dup@hostile', '', ' '),
  fc.string({ maxLength: 30 }).map((s) => `${s}@hostile`),
);
const latin1 = fc.constant(Buffer.from('SUMMARY:Caf\xe9 na\xefve \xfc\xdf \xa0\xff\r\n', 'latin1'));
const summary = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => `SUMMARY:${s}`),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => `SUMMARY:${s}`),
  fc.constant('SUMMARY;LANGUAGE="unclosed:Reserved'),
);

/** One VEVENT (or VTODO) with random, often broken properties. */
const event = fc.record({
  component: fc.constantFrom('VEVENT', 'VEVENT', 'VEVENT', 'VTODO', 'VJOURNAL', 'VFREEBUSY'),
  uid: fc.option(uid, { nil: undefined }),
  start: fc.option(dateProperty('DTSTART'), { nil: undefined }),
  end: fc.option(fc.oneof(dateProperty('DTEND'), fc.constantFrom('DURATION:P1D', 'DURATION:-P99999W', 'DURATION:garbage',
    'DURATION:PT0S')), { nil: undefined }),
  rrules: fc.array(rrule, { maxLength: 3 }),
  extra: fc.array(fc.oneof(
    dateProperty('EXDATE'),
    dateProperty('RDATE'),
    dateProperty('RECURRENCE-ID'),
    fc.constantFrom('SEQUENCE:99999999999', 'SEQUENCE:-1', 'SEQUENCE:x', 'STATUS:CANCELLED', 'TRANSP:TRANSPARENT',
      'RANGE=THISANDFUTURE', 'RECURRENCE-ID;RANGE=THISANDFUTURE:20250101', 'EXRULE:FREQ=SECONDLY', 'DTSTAMP:garbage'),
    summary,
  ), { maxLength: 4 }),
}).map((e): Piece => [
  `BEGIN:${e.component}`,
  ...(e.uid === undefined ? [] : [`UID:${e.uid}`]),
  ...(e.start === undefined ? [] : [e.start]),
  ...(e.end === undefined ? [] : [e.end]),
  ...e.rrules,
  ...e.extra,
  `END:${e.component}`,
].join('\n'));

const nesting = fc.record({
  depth: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1_000, max: 3_000 })),
  name: fc.constantFrom('X', 'VEVENT', 'VALARM', 'VCALENDAR', 'VTIMEZONE', 'DAYLIGHT', 'X-DEEP'),
  closed: fc.constantFrom('all', 'none', 'half', 'wrong'),
}).map(({ depth, name, closed }): Piece => {
  const open = Array.from({ length: depth }, () => `BEGIN:${name}`);
  const ends = closed === 'none' ? 0 : closed === 'half' ? Math.floor(depth / 2) : depth;
  const close = Array.from({ length: ends }, (_, i) => `END:${closed === 'wrong' && i % 2 === 0 ? 'Y' : name}`);
  return [...open, 'UID:nested@hostile', 'DTSTART:20250101', ...close].join('\n');
});

const bulk = fc.record({
  count: fc.integer({ min: 100, max: 3_000 }),
  kind: fc.constantFrom('stays', 'same-uid', 'no-uid', 'daily-forever', 'secondly', 'overrides'),
}).map(({ count, kind }): Piece => {
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const start = date(i % 700);
    const id = kind === 'same-uid' || kind === 'overrides' ? 'bulk@hostile' : `bulk-${i}@hostile`;
    lines.push('BEGIN:VEVENT');
    if (kind !== 'no-uid') lines.push(`UID:${id}`);
    lines.push(`DTSTART;VALUE=DATE:${start}`, `DTEND;VALUE=DATE:${date((i % 700) + 1)}`);
    if (kind === 'daily-forever') lines.push('RRULE:FREQ=DAILY');
    if (kind === 'secondly') lines.push('RRULE:FREQ=SECONDLY;COUNT=2147483647');
    if (kind === 'overrides') lines.push(`RECURRENCE-ID;VALUE=DATE:${start}`);
    lines.push(`SUMMARY:Bulk ${i}`, 'END:VEVENT');
  }
  return lines.join('\n');
});

const huge = fc.constantFrom('description', 'folded', 'no-colon', 'name').map((kind): Piece => {
  const filler = 'x'.repeat(hugeLength);
  if (kind === 'description') return `BEGIN:VEVENT\nUID:huge@hostile\nDTSTART:20250101\nDESCRIPTION:${filler}\nEND:VEVENT`;
  if (kind === 'folded') return `X-HUGE:${filler.replace(/(.{74})/g, '$1\r\n ')}`;
  if (kind === 'no-colon') return filler;
  return `${filler}:value`;
});

const timezone = fc.record({ id: tzid, rule: rrule, start: dateValue }).map(({ id, rule, start }): Piece => [
  'BEGIN:VTIMEZONE', `TZID:${id}`, 'BEGIN:STANDARD', `DTSTART:${start}`, rule, 'TZOFFSETFROM:+9999',
  'TZOFFSETTO:garbage', 'END:STANDARD', 'END:VTIMEZONE',
].join('\n'));

const junk = fc.oneof(
  fc.string({ maxLength: 60 }).map((s): Piece => s.replaceAll(':', '')),
  fc.constantFrom<Piece>(' continuation without a line', '\t', '', ':', '::::', ';;;:', 'BEGIN', 'END:', 'BEGIN:',
    'END:VCALENDAR\nBEGIN:VEVENT', '\u0000\u0000', 'BEGIN:VCALENDAR'),
  fc.uint8Array({ maxLength: 2_048 }),
);

const piece = fc.oneof(
  { weight: 6, arbitrary: event.map((p) => ['event', p] as const) },
  { weight: 2, arbitrary: nesting.map((p) => ['nesting', p] as const) },
  { weight: 1, arbitrary: bulk.map((p) => ['bulk', p] as const) },
  { weight: 1, arbitrary: huge.map((p) => ['huge', p] as const) },
  { weight: 1, arbitrary: timezone.map((p) => ['timezone', p] as const) },
  { weight: 3, arbitrary: junk.map((p) => ['junk', p] as const) },
  { weight: 1, arbitrary: latin1.map((p) => ['latin1', p] as const) },
);

const hostile: fc.Arbitrary<Hostile> = fc.record({
  parts: fc.array(fc.tuple(piece, eol), { minLength: 1, maxLength: 12 }),
  eol,
  bom: fc.boolean(),
  lower: fc.boolean(),
  hold: fc.boolean(),
  // Cut at a fraction of its length (per mille).
  end: fc.oneof(
    { weight: 3, arbitrary: fc.constant('whole' as const) },
    { weight: 1, arbitrary: fc.constant('missing' as const) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 999 }) },
  ),
}).map(({ parts, ...rest }) => {
  const h: Hostile = { ...rest, kinds: parts.map(([[kind]]) => kind), pieces: parts.map(([[, p]]) => p),
    eols: parts.map(([, e]) => e) };
  // A counterexample is reported by its recipe, not by its megabytes.
  return Object.assign(h, { [fc.toStringMethod]: () => describe(h, bodyOf(h).length) });
});

/** The body's bytes: the frame around the pieces, the line ends and case chosen, maybe cut short. */
function bodyOf(h: Hostile): Buffer {
  const text = (s: string, lineEnd = h.eol) => {
    const cased = h.lower ? s.replace(/^(BEGIN|END|DTSTART|DTEND|UID|RRULE|SUMMARY):/gm, (m) => m.toLowerCase()) : s;
    return Buffer.from(cased.replaceAll('\n', lineEnd), 'utf8');
  };
  const chunks: Buffer[] = [];
  if (h.bom) chunks.push(Buffer.from([0xef, 0xbb, 0xbf]));
  chunks.push(text('BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//icalpush tests//hostile//EN\n'));
  h.pieces.forEach((p, i) => {
    const lineEnd = h.eols[i] ?? h.eol;
    chunks.push(typeof p === 'string' ? text(p, lineEnd) : Buffer.from(p), Buffer.from(lineEnd));
  });
  if (h.end !== 'missing') chunks.push(text('END:VCALENDAR\n'));
  const whole = Buffer.concat(chunks);
  return typeof h.end === 'number' ? whole.subarray(0, Math.floor((whole.length * h.end) / 1000)) : whole;
}

function describe(h: Hostile, bytes: number): string {
  const eols = JSON.stringify([...new Set([h.eol, ...h.eols])]);
  return `${bytes} bytes; pieces ${h.kinds.join(', ')}; line ends ${eols}; bom ${h.bom}; lower ${h.lower}; ` +
    `end ${h.end}; hold ${h.hold}`;
}

// ---------------------------------------------------------------------------------------------

const baseline = [
  'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//icalpush tests//hostile//EN',
  'BEGIN:VEVENT', 'UID:stay@hostile', 'DTSTAMP:20250101T120000Z', `DTSTART;VALUE=DATE:${date(40)}`,
  `DTEND;VALUE=DATE:${date(43)}`, 'SUMMARY:Reserved', 'END:VEVENT', 'END:VCALENDAR', '',
].join('\r\n');

test('random hostile feeds get no 5xx but 502/504, keep a plain 200 byte-exact and never stall the event loop',
  { timeout: 180_000 }, async (t) => {
    t.diagnostic(`HOSTILE_SEED=${seed}`);
    const served: { body: Buffer } = { body: Buffer.from(baseline) };
    const upstream = await startServer(t, (req, res) => {
      if (req.url?.split('?')[0] !== feedPath) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(served.body);
    });
    // The listing's peer: push reads it when a change of nights is classified, and is told by HEAD.
    const peer = await startServer(t, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : baseline);
    });
    const slowest: Array<{ ms: number; what: string }> = [];
    // Error lines the app logged, by message: a worker that threw on a body is worth knowing of.
    const errors = new Map<string, number>();
    let repeated = 0;

    /** One run on a fresh app: every method's answer checked; the longest event-loop delay meanwhile. */
    async function exercise(h: Hostile, body: Buffer, what: string): Promise<number> {
      served.body = Buffer.from(baseline);
      // A scope of its own, so each app is let go (and collected) after its run, not kept to the end.
      const teardown: Array<() => unknown> = [];
      const sidecar = await startApp({ after: (fn) => teardown.push(fn) }, upstream.url, {
        listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${listing}.ics` }] } },
        push: { watch: 0 },
        ...(h.hold ? {} : { snapshots: { hold: { span: '0s' } } }),
      });
      try {
        // The listing's nights before: so the hostile read is classified for push against them.
        assert.equal((await get(`${sidecar.url}${feedPath}`)).status, 200);
        await sidecar.app.feeds.settled();
        served.body = body;

        const loop = monitorEventLoopDelay({ resolution: 5 });
        loop.enable();
        const plain = await get(`${sidecar.url}${feedPath}`);
        assertStatus(plain.status, 'plain GET', what);
        if (plain.status === 200) assert.ok(plain.body.equals(body), `plain GET changed the upstream's bytes: ${what}`);
        const enhanced = await get(`${sidecar.url}${feedPath}`, { prefer: 'subscribe-enhanced-get' });
        assertStatus(enhanced.status, 'enhanced GET', what);
        const token = enhanced.headers['sync-token'];
        if (typeof token === 'string') {
          const again = await get(`${sidecar.url}${feedPath}`, { prefer: 'subscribe-enhanced-get', 'sync-token': token });
          assertStatus(again.status, 'enhanced GET with its Sync-Token', what);
          // The token was just issued for content that did not change: never refused (SPEC "Guarantees").
          assert.notEqual(again.status, 409, `a fresh Sync-Token was refused: ${what}`);
        }
        const head = await get(`${sidecar.url}${feedPath}`, {}, 'HEAD');
        assertStatus(head.status, 'HEAD', what);
        await sidecar.app.feeds.settled();
        loop.disable();
        assert.equal((await get(`${sidecar.url}/_icalpush/healthz`)).status, 200, `not alive after: ${what}`);
        for (const line of sidecar.logs) {
          if (line.level !== 'error' && line.level !== 'fatal') continue;
          const msg = String(line.msg);
          errors.set(msg, (errors.get(msg) ?? 0) + 1);
          // A bug on the request path (the handler threw), never an expected outcome.
          assert.notEqual(msg, 'feed request failed', `${what}: ${JSON.stringify(line)}`);
        }
        return loop.max / 1e6;
      } finally {
        for (const fn of teardown) await fn();
      }
    }

    await fc.assert(fc.asyncProperty(hostile, async (h) => {
      const body = bodyOf(h);
      const what = describe(h, body.length);
      let stallMs = await exercise(h, body, what);
      if (stallMs >= maxLoopDelayMs) {
        // Work that holds the loop does so every time; a machine busy elsewhere does not: once more.
        repeated += 1;
        stallMs = Math.min(stallMs, await exercise(h, body, what));
      }
      slowest.push({ ms: Math.round(stallMs), what });
      assert.ok(stallMs < maxLoopDelayMs, `the event loop stalled ${stallMs.toFixed(0)} ms, twice: ${what}`);
    }), { numRuns, seed, endOnFailure: true, ...(process.env.HOSTILE_PATH ? { path: process.env.HOSTILE_PATH } : {}) });

    slowest.sort((a, b) => b.ms - a.ms);
    t.diagnostic(`longest event-loop delays (ms): ${slowest.slice(0, 3).map((s) => `${s.ms} (${s.what})`).join('; ')}`);
    t.diagnostic(`error lines logged: ${JSON.stringify(Object.fromEntries(errors))}; runs repeated after a stall: ${
      repeated}`);
  });

function assertStatus(status: number, what: string, input: string): void {
  assert.ok(status < 500 || status === 502 || status === 504, `${what} answered ${status}: ${input}`);
}

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}
