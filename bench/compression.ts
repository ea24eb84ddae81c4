// Compression benchmark (SPEC "Compression"): for a 1,000- and a 10,000-event feed, the bytes of one
// poll and feed GET throughput through icalpush without compression, with gzip and with br, side by
// side with an upstream doing its own gzip per request, read directly. The upstream stamps every
// answer with a fresh DTSTAMP (so a plain GET's bytes are new on every upstream read) and icalpush
// reads it with `Accept-Encoding: identity`. Each server and each load run has its own process.
import { type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Throughput } from './fixtures/autocannon.ts';
import { type Load, rawGet, type RawAnswer, rounds, type Target } from './feeds.ts';
import { fmt, runJsonChild, startProcess } from './passthrough.ts';

const feedPath = '/calendar/4711.ics';

// undici, 50 connections, in its own process: autocannon reads coded (binary) bodies ~10× slower than text.
const load: Load = (url, seconds, headers = {}) =>
  runJsonChild<Throughput>('bench/fixtures/closed-load.ts', [url, String(seconds), '50', JSON.stringify(headers)]);
const enhanced = 'subscribe-enhanced-get';

/** The body of an answer in its content coding, decoded. */
function decode(answer: RawAnswer): Buffer {
  const coding = answer.headers.get('content-encoding');
  if (coding === 'gzip') return gunzipSync(answer.body);
  if (coding === 'br') return brotliDecompressSync(answer.body);
  if (coding !== undefined) throw new Error(`unexpected content coding ${coding}`);
  return answer.body;
}

const events = (body: Buffer) => body.toString('utf8').split('BEGIN:VEVENT').length - 1;

/** Compressions icalpush has run so far, both codings. */
async function compressions(sidecar: string): Promise<number> {
  const scrape = (await rawGet(sidecar, '/_icalpush/metrics')).body.toString('utf8');
  let total = 0;
  for (const line of scrape.split('\n')) {
    if (line.startsWith('icalpush_feed_compressions_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

type Case = { name: string; base: string; headers: Record<string, string>; sidecar: boolean };

/** Median ms of `n` runs of `work`. */
function medianMs(n: number, work: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    work();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

async function section(
  eventCount: number,
  upstream: string,
  sidecar: string,
  snapshot: string,
  count: number,
  seconds: number,
): Promise<string> {
  const cases: Case[] = [
    { name: 'direct, identity', base: upstream, headers: {}, sidecar: false },
    { name: 'direct, the upstream\'s own gzip', base: upstream, headers: { 'accept-encoding': 'gzip' }, sidecar: false },
    { name: 'icalpush plain GET, identity', base: sidecar, headers: {}, sidecar: true },
    { name: 'icalpush plain GET, gzip', base: sidecar, headers: { 'accept-encoding': 'gzip' }, sidecar: true },
    { name: 'icalpush plain GET, br', base: sidecar, headers: { 'accept-encoding': 'br' }, sidecar: true },
    { name: 'icalpush enhanced full, identity', base: sidecar, headers: { prefer: enhanced }, sidecar: true },
    { name: 'icalpush enhanced full, gzip', base: sidecar, headers: { prefer: enhanced, 'accept-encoding': 'gzip' }, sidecar: true },
    { name: 'icalpush enhanced full, br', base: sidecar, headers: { prefer: enhanced, 'accept-encoding': 'br' }, sidecar: true },
    // maxAge: GETs answered from the snapshot, without an upstream read: what answering costs alone.
    { name: 'icalpush plain GET, maxAge 1m, identity', base: snapshot, headers: {}, sidecar: true },
    { name: 'icalpush plain GET, maxAge 1m, gzip', base: snapshot, headers: { 'accept-encoding': 'gzip' }, sidecar: true },
    { name: 'icalpush plain GET, maxAge 1m, br', base: snapshot, headers: { 'accept-encoding': 'br' }, sidecar: true },
  ];
  // One read first, so the snapshot and its history exist.
  await rawGet(sidecar, feedPath);
  await rawGet(snapshot, feedPath);
  const polls = new Map<string, RawAnswer>();
  for (const c of cases) {
    const answer = await rawGet(c.base, feedPath, { 'accept-encoding': 'identity', ...c.headers });
    const decoded = decode(answer);
    if (answer.status !== 200 || events(decoded) !== eventCount) {
      throw new Error(`${c.name}: ${answer.status} with ${events(decoded)} events`);
    }
    polls.set(c.name, answer);
  }
  const targets: Target[] = cases.map((c) => ({
    name: c.name,
    url: `${c.base}${feedPath}`,
    // The load sends no Accept-Encoding of its own: the identity rows send none at all.
    headers: c.headers,
    ...(c.sidecar ? { count: () => compressions(c.base) } : {}),
  }));
  const results = await rounds(targets, count, seconds, load);
  const wire = (a: RawAnswer) => a.headerBytes + a.bodyBytes;
  const direct = polls.get(cases[0]!.name)!;
  const directGzip = polls.get(cases[1]!.name)!;
  const directRun = results.get(cases[0]!.name)!;
  const directGzipRun = results.get(cases[1]!.name)!;
  const rows = [
    `| ${fmt(eventCount)} events | coding | body bytes per poll | wire bytes | × direct identity | × upstream gzip | req/s (50 conns, median of ${count} × ${seconds} s) | × direct identity | × direct gzip | compressions per answer |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of cases) {
    const poll = polls.get(c.name)!;
    const run = results.get(c.name)!;
    const served = run.reqPerSec * seconds;
    rows.push(
      `| ${c.name} | ${poll.headers.get('content-encoding') ?? 'identity'} | ${poll.bodyBytes} | ${wire(poll)} | ${fmt(wire(poll) / wire(direct), 3)} | ${fmt(wire(poll) / wire(directGzip), 2)} | ${fmt(run.reqPerSec)} | ${fmt(run.reqPerSec / directRun.reqPerSec, 2)} | ${fmt(run.reqPerSec / directGzipRun.reqPerSec, 2)} | ${c.sidecar ? fmt(run.counted / Math.max(1, served), 3) : '-'} |${run.errors ? ` ${run.errors} errors` : ''}`,
    );
  }
  // What the upstream link would save if icalpush asked for gzip (it asks for identity): the bytes are
  // the direct rows', and inflating is this much CPU per read, with the inflated size capped.
  const inflateMs = medianMs(9, () => gunzipSync(directGzip.body, { maxOutputLength: 20 * 1024 * 1024 }));
  rows.push('');
  rows.push(`Upstream link: icalpush reads ${direct.bodyBytes} B per upstream read (identity); the upstream's gzip would be ${directGzip.bodyBytes} B (${fmt(directGzip.bodyBytes / direct.bodyBytes * 100, 1)}%), inflated in ${fmt(inflateMs, 2)} ms (median of 9, capped at 20 MiB).`);
  return rows.join('\n');
}

/** Runs the compression benchmark and returns its tables as text. */
export async function main(): Promise<string> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const count = Number(process.env.BENCH_ROUNDS ?? 3);
  const sections: string[] = [];
  for (const eventCount of [1000, 10000]) {
    const children: ChildProcess[] = [];
    try {
      const start = async (args: string[]) => `http://127.0.0.1:${await startProcess(args, children)}`;
      const upstream = await start(['bench/fixtures/feed-upstream.ts', '--events', String(eventCount), '--gzip']);
      const sidecar = await start(['bench/fixtures/icalpush-app.ts', upstream]);
      const snapshot = await start(['bench/fixtures/icalpush-app.ts', upstream, '1m']);
      sections.push(await section(eventCount, upstream, sidecar, snapshot, count, seconds));
    } finally {
      for (const c of children) c.kill('SIGTERM');
    }
  }
  return sections.join('\n\n');
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
