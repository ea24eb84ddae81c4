// Push-decision benchmark: what the pure decision model (src/push/decide/) costs. 1: decide() over 10,000
// generated listings, each one change apart (a booking, a cancellation, one a peer explains, the edge
// block's daily roll, Booking.com's trim at local midnight) across five zones: decisions per second and
// the slowest single decision. 2: one decision on a 10,000-event feed: computing its nights (the worker
// thread's work) and decide() on them (the event loop's), plus decide() on adversarial night sets. The
// measurements run in a child process of their own (bench/fixtures/decide-measure.ts, --expose-gc), so
// its RSS and its cold first calls are this benchmark's. BENCH_REPS sets the passes over the listings (5).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism, cpus } from 'node:os';
import type { FeedResult, ListingsResult, Timing } from './fixtures/decide-measure.ts';
import { changeKinds } from './fixtures/decide-data.ts';
import { fmt } from './passthrough.ts';

const root = new URL('..', import.meta.url).pathname;
/** The sidecar's rule: no single piece of event-loop work above this. */
const loopBudgetMs = 20;

async function child<T>(mode: string): Promise<T> {
  const proc = spawn(process.execPath, ['--expose-gc', 'bench/fixtures/decide-measure.ts', mode],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`decide-measure ${mode} exited with ${code}`);
  return JSON.parse(out) as T;
}

const count = (n: number) => n.toLocaleString('en-US');
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? Number.NaN;
const verdict = (met: boolean) => (met ? '**met**' : '**not met**');
const ms = (n: number) => fmt(n, n < 10 ? 2 : 1);

/** A per-pass figure: its median over the passes and its worst (highest, or lowest for throughput). */
function passRow(name: string, values: number[], higherIsWorse: boolean, digits: number, notes: string): string {
  const worst = higherIsWorse ? Math.max(...values) : Math.min(...values);
  return `| ${name} | ${values.length} passes | ${fmt(median(values), digits)} | ${fmt(worst, digits)} | ${notes} |`;
}

const cpuNote = (t: Timing) => `mean ${ms(t.meanMs)} wall, ${ms(t.cpuMeanMs)} CPU`;

function timingRow(name: string, t: Timing, notes: string, p99 = true): string {
  const worst = p99 ? `${ms(t.p99Ms)} / ${ms(t.maxMs)}` : ms(t.maxMs);
  return `| ${name} | ${t.reps} | ${ms(t.medianMs)} | ${worst} | first call ${ms(t.coldMs)}; ${cpuNote(t)}; ${notes} |`;
}

function table(l: ListingsResult, f: FeedResult): string {
  const perSecond = (wallMs: number) => (l.listings / wallMs) * 1000;
  const slowest = l.passes.reduce((a, b) => (b.maxUs > a.maxUs ? b : a));
  const kinds = Object.entries(l.kinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${count(n)}`).join(' · ');
  const m = l.memory;
  const worstWallMs = Math.max(slowest.maxUs / 1000, l.cold.maxUs / 1000, f.decide.maxMs,
    ...f.adversarial.map((a) => a.maxMs));
  const rows = [
    '| measurement | reps | median | worst | notes |',
    '|---|---:|---:|---:|---|',
    passRow(`1. decide() over ${count(l.listings)} listings, one change each: decisions/s`, l.plainMs.map(perSecond),
      false, 0, `worst = slowest pass, ${fmt(Math.max(...l.plainMs))} ms (median ${fmt(median(l.plainMs))} ms wall, `
      + `${fmt(median(l.plainCpuMs))} ms CPU); the process's first (cold) pass ${fmt(perSecond(l.cold.wallMs))}/s with `
      + 'per-call timers'),
    passRow('1. one decision, p50 (µs)', l.passes.map((p) => p.p50Us), true, 1,
      `per-call timed passes; cold pass ${fmt(l.cold.p50Us, 1)}`),
    passRow('1. one decision, p99 (µs)', l.passes.map((p) => p.p99Us), true, 0, `cold pass ${fmt(l.cold.p99Us)}`),
    passRow('1. one decision, max (µs)', l.passes.map((p) => p.maxUs), true, 0,
      `cold pass ${fmt(l.cold.maxUs)}; slowest: ${slowest.worst}`
      + `${slowest.worstDuringGc ? ', a GC pause overlapped it' : ''}; timed alone ${fmt(l.worstAlone.medianUs)} µs median, `
      + `${fmt(l.worstAlone.maxUs)} max; GC in the ${l.passes.length} passes: ${l.gc.count} pauses, ${fmt(l.gc.ms)} ms, `
      + `longest ${ms(l.gc.maxMs)} ms`),
    `| 1. decisions by kind | 1 pass | ${kinds} | - | the same in every pass: ${l.stable ? 'yes' : '**no**'} |`,
    `| 1. memory (MB) | - | listings' inputs ${fmt(m.heapListingsMb, 1)} heap | max RSS ${fmt(m.maxRssMb)} | heap `
    + `${fmt(m.heapBeforeMb, 1)} before the build, RSS ${fmt(m.rssBeforeMb)} → ${fmt(m.rssAfterBuildMb)} after it (build `
    + `${fmt(l.buildMs)} ms); RSS is the process's: the inputs, their build's garbage, V8 and Node |`,
    timingRow(`2a. nights of the ${count(f.events)}-event feed, first read (ms)`, f.firstRead.total,
      `analyzeCalendar ${ms(f.firstRead.analyze.medianMs)} + calendarNights ${ms(f.firstRead.nights.medianMs)} (medians); `
      + `worker thread`, false),
    timingRow('2a. nights, re-read with one booking added, reusing the first read\'s blocks (ms)', f.reRead.total,
      `analyzeCalendar ${ms(f.reRead.analyze.medianMs)} + calendarNights ${ms(f.reRead.nights.medianMs)} (medians); `
      + 'as runAnalyze does it; worker thread', false),
    timingRow('2b. decide() on the two nights sets, 3 peers (ms)', f.decide,
      `${f.decide.kind}: ${f.decide.why}; peers ${f.decide.peerBusy.join('/')} busy nights; event loop`),
    ...f.adversarial.map((a) => timingRow(`2b. decide(), adversarial: ${a.name} (ms)`, a,
      `${a.kind}${a.truncated ? ', truncated' : ''}; event loop`)),
  ];
  const byChange = changeKinds.map((change) => {
    const outcomes = Object.entries(l.byChange[change] ?? {}).sort((a, b) => b[1] - a[1]);
    const total = outcomes.reduce((t, [, n]) => t + n, 0);
    return `- ${change} (${count(total)}): ${outcomes.map(([k, n]) => `${k} ${count(n)}`).join(', ')}`;
  });
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    ...rows,
    '',
    `Part 1: ${count(l.listings)} listings (zones Europe/Rome, Pacific/Auckland, Pacific/Honolulu, America/New_York and `
    + `none, equally), reads during 2026; ${fmt(l.nights.staysP50)} stays (median, 5–40) and ${fmt(l.nights.busyP50)} busy `
    + `nights (median, max ${l.nights.busyMax}) over 730 days; ${count(l.nights.edgeBlocks)} with an Airbnb-style ≥ 28-night `
    + 'far edge block; 3 peers each showing the stays booked through it and a few nights freed lately. Each after-state '
    + 'differs by one change; what decide() made of each:',
    ...byChange,
    '',
    `Part 2: ${count(f.events)} all-day VEVENTs (half Booking.com "CLOSED - Not available", half Airbnb "Reserved", distinct `
    + `UIDs, ${fmt(f.feedBytes / 2 ** 20, 2)} MB), overlapping within runs of 3–12 nights with 1–4 free nights between: `
    + `${f.nightsBusy} of 730 nights busy; the second version adds one booking on a gap ≥ 200 days ahead. Europe/Rome. `
    + `Max RSS of that process ${fmt(f.maxRssMb)} MB. Wall-clock ms (performance.now()), GC before each read.`,
    '',
    `Machine: ${availableParallelism()} cores (${cpu}), Node ${process.version}. Goal (the sidecar's rule: no single piece `
    + `of event-loop work above ~${loopBudgetMs} ms): slowest decide() seen ${ms(worstWallMs)} ms (wall, whatever else `
    + `ran on the machine) — ${verdict(worstWallMs <= loopBudgetMs)}.`,
  ].join('\n');
}

/** Runs the push-decision benchmark; returns its table. */
export async function main(): Promise<string> {
  const listings = await child<ListingsResult>('listings');
  const feed = await child<FeedResult>('feed');
  return table(listings, feed);
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
