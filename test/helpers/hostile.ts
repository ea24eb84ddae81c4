// Hostile feeds as upstreams and peers serve them, and a probe of how long the sidecar takes to answer
// while it reads one: the regression tests of SPEC "Nothing a feed contains can stall the sidecar".
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { request } from 'undici';

const header = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//hostile//test//EN'];

/** A stay on `start` … `end` (YYYYMMDD, DTEND exclusive). */
export function stay(uid: string, start: string, end: string, extra: string[] = []): string {
  return ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T000000Z', `DTSTART;VALUE=DATE:${start}`,
    `DTEND;VALUE=DATE:${end}`, 'SUMMARY:Reserved', ...extra, 'END:VEVENT'].join('\r\n');
}

/** A calendar of these events (CRLF). */
export function calendarOf(...events: string[]): string {
  return [...header, ...events, 'END:VCALENDAR', ''].join('\r\n');
}

/** One recurring event with `rule`, starting 2020-01-01 10:00Z. */
export function recurring(uid: string, rule: string): string {
  return ['BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T000000Z', 'DTSTART:20200101T100000Z',
    'DTEND:20200101T110000Z', `RRULE:${rule}`, 'SUMMARY:Recurring', 'END:VEVENT'].join('\r\n');
}

/** The absurd rules real feeds have carried: a whole calendar of each. */
export const absurdRules: Record<string, string> = {
  'HOURLY;COUNT=2^31': calendarOf(recurring('h', 'FREQ=HOURLY;COUNT=2147483647'), stay('s', '20300101', '20300103')),
  'DAILY;COUNT=100000': calendarOf(recurring('d', 'FREQ=DAILY;COUNT=100000'), stay('s', '20300101', '20300103')),
  '300 × MINUTELY': calendarOf(...Array.from({ length: 300 }, (_, i) => recurring(`m${i}`, 'FREQ=MINUTELY'))),
};

/** One VEVENT holding `depth` nested `BEGIN:X` blocks. */
export function deeplyNested(depth: number): string {
  const open = Array.from({ length: depth }, () => 'BEGIN:X\r\nX-LEVEL:1').join('\r\n');
  const close = Array.from({ length: depth }, () => 'END:X').join('\r\n');
  return calendarOf(stay('a', '20300101', '20300103'),
    ['BEGIN:VEVENT', 'UID:deep', 'DTSTART;VALUE=DATE:20300201', open, close, 'END:VEVENT'].join('\r\n'));
}

/** A feed of `events` stays padded to about `bytes` in all (a long DESCRIPTION each). */
export function bigFeed(events: number, bytes: number): string {
  const pad = 'x'.repeat(Math.max(0, Math.floor(bytes / events) - 260));
  const lines: string[] = [];
  for (let i = 0; i < events; i += 1) {
    const day = new Date(Date.UTC(2030, 0, 1) + (i % 700) * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
    lines.push(stay(`big-${i}`, day, day, [`DESCRIPTION:${pad}`]));
  }
  return calendarOf(...lines);
}

/** What probeWhile saw: the work's result, the slowest healthz answer and the longest event-loop stall. */
export type Probe<T> = { result: T; slowestMs: number; answers: number; stallMs: number };

/**
 * Runs `work` while asking `${base}/_icalpush/healthz` one request after another, and measures this
 * process's event loop (the sidecar runs in it): how slow the slowest answer and the longest stall were.
 */
export async function probeWhile<T>(base: string, work: () => Promise<T>): Promise<Probe<T>> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let done = false;
  let slowestMs = 0;
  let answers = 0;
  const probing = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await request(`${base}/_icalpush/healthz`);
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`healthz answered ${res.statusCode}`);
      slowestMs = Math.max(slowestMs, performance.now() - started);
      answers += 1;
    }
  })();
  try {
    const result = await work();
    return { result, slowestMs, answers, stallMs: loop.max / 1e6 };
  } finally {
    done = true;
    await probing;
    loop.disable();
  }
}
