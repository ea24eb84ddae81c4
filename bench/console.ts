// The operator console at a platform's scale: `icalpush serve` (its own process, memory store, `push.watch: 0`)
// with a generated map of 10,000 listings × 3 peers in front of a fake upstream (own process) that serves small
// feeds for the listings and their peers alike and answers notifications. Some state first (200 listings' feeds
// read through the sidecar, 20 of them then booked and re-read: primary changes, peers read and notified), then
// the wall time of each console page at the sidecar, sequential requests after a warm-up; then feed GETs through
// the sidecar (autocannon, own process) with nobody on the console and while a client asks for the console's
// pages in a loop, and the sidecar's event-loop delay meanwhile. Run: `npm run bench -- console`; BENCH_SECONDS
// (5) is each load run, BENCH_ROUNDS (3) how many of each, BENCH_REQUESTS (60) the timed requests per page,
// BENCH_SIDECAR_ARGS adds node flags to the sidecar (e.g. `--cpu-prof --cpu-prof-dir=.scratch/prof`).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { freePort } from '../src/demo/mesh.ts';
import { autocannon, type Throughput } from './fixtures/autocannon.ts';
import { listingId, writeConnectionMap } from './fixtures/connection-map.ts';
import { fmt, startProcess } from './passthrough.ts';

const root = new URL('..', import.meta.url).pathname;
const node = process.execPath;
const listings = Number(process.env.BENCH_LISTINGS ?? 10_000);
const peers = 3;
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const timed = Number(process.env.BENCH_REQUESTS ?? 60);
const warmUp = 10;
const readListings = 200;
const bookedListings = 20;
const sidecarFlags = (process.env.BENCH_SIDECAR_ARGS ?? '').split(' ').filter(Boolean);
const goalMs = 100;

type Timing = { medianMs: number; p95Ms: number; maxMs: number; bytes: number; status: number; loopDelayMs: number };

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;

/** One GET, its wall time (until the whole body is in) and what it answered. */
async function get(url: string): Promise<{ ms: number; status: number; bytes: number; body: string }> {
  const t0 = performance.now();
  const res = await request(url, { headersTimeout: 60_000, bodyTimeout: 60_000 });
  const body = await res.body.text();
  return { ms: performance.now() - t0, status: res.statusCode, bytes: Buffer.byteLength(body), body };
}

/** `timed` sequential GETs of `url` after `warmUp` untimed ones. */
async function timePage(url: string, sidecar: ChildProcess): Promise<Timing> {
  for (let i = 0; i < warmUp; i++) await get(url);
  await loopDelay(sidecar);
  const times: number[] = [];
  let last = { status: 0, bytes: 0 };
  for (let i = 0; i < timed; i++) {
    const r = await get(url);
    times.push(r.ms);
    last = r;
  }
  const { maxMs: loopDelayMs } = await loopDelay(sidecar);
  const sorted = times.sort((a, b) => a - b);
  return { medianMs: quantile(sorted, 0.5), p95Ms: quantile(sorted, 0.95), maxMs: sorted.at(-1)!, ...last,
    loopDelayMs };
}

/** The sidecar's event-loop delay since the previous call (the preloaded probe's; each call starts a new window). */
async function loopDelay(sidecar: ChildProcess): Promise<{ maxMs: number; p99Ms: number }> {
  const answer = once(sidecar, 'message') as Promise<[{ maxMs: number; p99Ms: number }]>;
  sidecar.send('loop-delay');
  return (await answer)[0];
}

/** The app's own `icalpush_event_loop_delay_seconds{stat="max"}` since its previous collect, in ms. */
async function appLoopDelayMaxMs(base: string): Promise<number> {
  const text = (await get(`${base}/_icalpush/metrics`)).body;
  return Number(/^icalpush_event_loop_delay_seconds\{stat="max"\} (\S+)/m.exec(text)?.[1] ?? Number.NaN) * 1000;
}

async function startSidecar(config: string, port: number, children: ChildProcess[]):
Promise<{ base: string; sidecar: ChildProcess }> {
  const child = spawn(node, [...sidecarFlags, '--import', './bench/fixtures/loop-delay-probe.ts', 'src/main.ts', 'serve',
    '--config', config], { cwd: root, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  for (;;) {
    try {
      const res = await request(`${base}/_icalpush/readyz`);
      await res.body.dump();
      if (res.statusCode === 200) return { base, sidecar: child };
    } catch {
      // Not listening yet.
    }
    if (performance.now() - started > 60_000) throw new Error('not ready within 60 s');
    await sleep(20);
  }
}

/** The state the console shows: first reads, then bookings re-read (primary: peers read and notified). */
async function giveState(base: string, upstream: string): Promise<void> {
  const feed = (i: number) => `${base}/calendar/${listingId(i)}.ics`;
  for (let i = 0; i < readListings; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, k) => {
      const r = await get(feed(i + k));
      if (r.status !== 200) throw new Error(`feed GET ${feed(i + k)}: ${r.status}`);
    }));
  }
  for (let i = 0; i < bookedListings; i++) {
    const res = await request(`${upstream}/_book?listing=${listingId(i * 10)}`, { method: 'POST' });
    await res.body.dump();
    await get(feed(i * 10));
  }
  // The peers' reads and HEADs run after the answers.
  await sleep(2_000);
}

type LoadRun = Throughput & { loopDelayMs: number; loopP99Ms: number; appLoopDelayMs: number; consoleRequests: number;
  consoleMedianMs: number; consoleMaxMs: number; };

/** Feed GETs for `seconds` through the sidecar; meanwhile a client asks for `consoleUrls` in turn, if any. */
async function feedLoad(base: string, sidecar: ChildProcess, consoleUrls: string[]): Promise<LoadRun> {
  await appLoopDelayMaxMs(base);
  await loopDelay(sidecar);
  let loading = true;
  const consoleTimes: number[] = [];
  const client = consoleUrls.length > 0 ? (async () => {
    for (let i = 0; loading; i++) consoleTimes.push((await get(consoleUrls[i % consoleUrls.length]!)).ms);
  })() : Promise.resolve();
  const r = await autocannon(`${base}/calendar/${listingId(0)}.ics`, seconds);
  loading = false;
  await client;
  const { maxMs: loopDelayMs, p99Ms: loopP99Ms } = await loopDelay(sidecar);
  const appLoopDelayMs = await appLoopDelayMaxMs(base);
  const sorted = consoleTimes.sort((a, b) => a - b);
  return { ...r, loopDelayMs, loopP99Ms, appLoopDelayMs, consoleRequests: sorted.length,
    consoleMedianMs: quantile(sorted, 0.5), consoleMaxMs: sorted.at(-1) ?? Number.NaN };
}

const medianRun = (runs: LoadRun[]) =>
  [...runs].sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor(runs.length / 2)]!;

export async function main(): Promise<string> {
  const children: ChildProcess[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-console-'));
  try {
    const upstream = `http://127.0.0.1:${await startProcess(['bench/fixtures/console-upstream.ts'], children)}`;
    const port = await freePort();
    const config = await writeConnectionMap(dir,
      { listings, peers, format: 'csv', upstream, listen: `127.0.0.1:${port}` },
      'push:\n  watch: 0\nlog:\n  level: warn\n');
    // The generated peers' URLs point at a closed port: here they are the fake upstream's.
    const file = join(dir, 'listings.csv');
    await writeFile(file, (await readFile(file, 'utf8')).replaceAll('http://127.0.0.1:9/', `${upstream}/`));
    const { base, sidecar } = await startSidecar(config, port, children);
    await giveState(base, upstream);
    // Until the sidecar's loop is quiet (the state's reads and notifications done): at most 10 s.
    await loopDelay(sidecar);
    for (let i = 0; i < 10; i++) {
      await sleep(1_000);
      if ((await loopDelay(sidecar)).maxMs < 20) break;
    }

    const one = listingId(10);
    // What the model matches: the id or a peer's name (airbnb, vrbo, booking) holds the text.
    const matching = Array.from({ length: listings }, (_, i) => listingId(i)).filter((id) => id.includes('listing-001')).length;
    const pages: { name: string; path: string }[] = [
      { name: 'listings, page 1', path: '/_icalpush/console/listings' },
      { name: 'listings, page 100', path: '/_icalpush/console/listings?page=100' },
      { name: `listings, search matching ${matching} (${fmt((100 * matching) / listings, 1)}%)`, path: '/_icalpush/console/listings?q=listing-001' },
      { name: 'listings, search matching none', path: '/_icalpush/console/listings?q=no-such-listing' },
      { name: `one listing's page (${one}, read, booked, notified)`, path: `/_icalpush/console/listings/${one}` },
      { name: 'overview page', path: '/_icalpush/' },
      { name: 'overview JSON', path: '/_icalpush/overview' },
    ];
    const timings: Timing[] = [];
    for (const page of pages) timings.push(await timePage(`${base}${page.path}`, sidecar));

    // The console client's loop: the listings table, a search and the overview, page and JSON.
    const consoleUrls = [0, 1, 2, 5, 6].map((i) => `${base}${pages[i]!.path}`);
    await autocannon(`${base}/calendar/${listingId(0)}.ics`, 1);
    const idle: LoadRun[] = [];
    const busy: LoadRun[] = [];
    const tableOnly: LoadRun[] = [];
    // (c): the listings table and searches only, no overview.
    const tableUrls = [0, 1, 2, 3].map((i) => `${base}${pages[i]!.path}`);
    for (let round = 0; round < rounds; round++) {
      idle.push(await feedLoad(base, sidecar, []));
      busy.push(await feedLoad(base, sidecar, consoleUrls));
      tableOnly.push(await feedLoad(base, sidecar, tableUrls));
    }
    const a = medianRun(idle);
    const b = medianRun(busy);
    const c = medianRun(tableOnly);

    const out = [
      `${listings.toLocaleString('en')} listings × ${peers} peers (memory store, \`push.watch: 0\`); ${readListings} listings' feeds read through the sidecar, ${bookedListings} of them then booked and re-read (primary: peers read and notified). Wall time at the client, sequential requests, ${warmUp} untimed then ${timed} timed each. Goal: the listings page under ${goalMs} ms at the sidecar.`,
      '',
      '| page | median ms | p95 ms | max ms | size | event loop delay max meanwhile | goal < 100 ms (median) |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...pages.map((p, i) => {
        const t = timings[i]!;
        return `| ${p.name} \`${p.path}\` | ${fmt(t.medianMs, 1)} | ${fmt(t.p95Ms, 1)} | ${fmt(t.maxMs, 1)} | ${fmt(t.bytes / 1024, 1)} KiB${t.status === 200 ? '' : ` (${t.status})`} | ${fmt(t.loopDelayMs, 1)} ms | ${
          t.medianMs < goalMs ? '**met**' : '**not met**'} |`;
      }),
      '',
      `Feed GETs through the sidecar (\`/calendar/${listingId(0)}.ics\`, autocannon 50 connections, ${seconds} s, median of ${rounds} interleaved rounds): (a) nobody on the console; (b) one client asking, sequentially in a loop, for the listings page 1 and page 100, the 1% search, the overview page and the overview JSON; (c) the same client on the listings table only (page 1, page 100, the 1% search, the empty search), no overview. Event-loop delay: a monitorEventLoopDelay preloaded into the sidecar (\`bench/fixtures/loop-delay-probe.ts\`, 10 ms resolution, the period taken off), max and p99 over the run; beside it the app's own \`icalpush_event_loop_delay_seconds{stat="max"}\` scraped at the run's end (the window since the previous scrape).`,
      '',
      '| feed GETs | req/s | p50 ms | p99 ms | event loop delay max (p99) | app metric max | console requests meanwhile (median / max ms) | errors |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...[['(a) nobody on the console', a], ['(b) console pages in a loop', b], ['(c) listings table only in a loop', c]].map(([name, r]) => {
        const run = r as LoadRun;
        return `| ${name as string} | ${fmt(run.reqPerSec)} | ${fmt(run.p50Ms)} | ${fmt(run.p99Ms)} | ${fmt(run.loopDelayMs, 1)} ms (${
          fmt(run.loopP99Ms, 1)}) | ${fmt(run.appLoopDelayMs, 1)} ms | ${run.consoleRequests ? `${run.consoleRequests} (${
          fmt(run.consoleMedianMs, 1)} / ${fmt(run.consoleMaxMs)})` : '-'} | ${run.errors + run.non2xx} |`;
      }),
      ...[['(b) / (a)', b], ['(c) / (a)', c]].map(([name, r]) => {
        const run = r as LoadRun;
        return `| ${name as string} | ${fmt(run.reqPerSec / a.reqPerSec, 2)} | ${fmt(run.p50Ms / a.p50Ms, 2)} | ${
          fmt(run.p99Ms / a.p99Ms, 2)} | | | | |`;
      }),
      '',
      `Rounds, req/s: ${[['a', idle], ['b', busy], ['c', tableOnly]].map(([n, runs]) =>
        `(${n as string}) ${(runs as LoadRun[]).map((r) => fmt(r.reqPerSec)).join(', ')}`).join('; ')}; event loop delay max: ${
        [['a', idle], ['b', busy], ['c', tableOnly]].map(([n, runs]) =>
          `(${n as string}) ${(runs as LoadRun[]).map((r) => fmt(r.loopDelayMs, 1)).join(', ')} ms`).join('; ')}.`,
      '',
      `Command: \`npm run bench -- console\`. Machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), Node ${process.versions.node}; the sidecar, the upstream, autocannon and this client each in their own process, all on these cores.`,
    ];
    return out.join('\n');
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
