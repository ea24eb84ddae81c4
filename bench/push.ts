// Push benchmark (SPEC "Push"): how fast a booking on one platform reaches its peers through their
// sidecars (iPP HEAD, refresh, import) against hourly polling; what a flood of inbound HEADs costs
// and causes upstream; and the upstream load of `push.watch`, measured at small scale and extrapolated.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Platform } from '../src/demo/platform.ts';
import { startMesh } from './fixtures/push-mesh.ts';
import { fmt, runJsonChild, startProcess } from './passthrough.ts';

const verdict = (met: boolean) => (met ? '**met**' : '**not met**');

/** Nearest-rank percentile of an ascending list. */
function pct(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

function median(values: number[]): number {
  return pct([...values].sort((a, b) => a - b), 0.5);
}

function addDays(date: Date, days: number): string {
  return new Date(date.getTime() + days * 86_400_000).toISOString().slice(0, 10);
}

const feedBody = (name: string, start: string) => [
  'BEGIN:VCALENDAR', 'VERSION:2.0', `PRODID:-//${name}//bench//EN`,
  'BEGIN:VEVENT', 'DTSTAMP:20250101T000000Z', `DTSTART;VALUE=DATE:${start}`, `DTEND;VALUE=DATE:${start.slice(0, 6)}28`,
  `UID:${name}-1@bench.example`, 'SUMMARY:Reserved', 'END:VEVENT', 'END:VCALENDAR', '',
].join('\r\n');

type World = { url: string; hits: Map<string, number[]>; close(): Promise<void> };

/**
 * A fake world on 127.0.0.1: any `*.ics` path answers a small feed (after `delayMs`), anything else
 * answers 200 empty; every request is recorded by path with its arrival time.
 */
async function startWorld(delayMs = 0): Promise<World> {
  const hits = new Map<string, number[]>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const list = hits.get(path) ?? [];
    list.push(performance.now());
    hits.set(path, list);
    req.resume();
    const answer = () => {
      if (!path.endsWith('.ics')) {
        res.writeHead(200, { 'content-length': '0' }).end();
        return;
      }
      const body = feedBody(path, '20300301');
      res.writeHead(200, { 'content-type': 'text/calendar', 'content-length': Buffer.byteLength(body), etag: '"v1"' });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const count = (world: World, filter: (path: string) => boolean = () => true) =>
  [...world.hits].reduce((sum, [path, list]) => sum + (filter(path) ? list.length : 0), 0);

async function startApp(config: Record<string, unknown>, children: ChildProcess[]): Promise<string> {
  const port = await startProcess(['bench/fixtures/push-app.ts', JSON.stringify(config)], children);
  return `http://127.0.0.1:${port}`;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  // No graceful shutdown needed here (and a SIGTERM mid-watch logs the reads it cuts).
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/** 1: booking on B → HEAD at A and C, refresh at A and C, import done at A and C. */
async function propagation(bookings: number): Promise<string> {
  const names = ['A', 'B', 'C'];
  const listing = 'beach-house';
  const mesh = await startMesh({ names, listing, exportDelayMs: 10, debounce: 0 });
  const others = [0, 2];
  const samples = new Map<string, number[]>();
  const add = (key: string, ms: number | undefined) => {
    if (ms !== undefined) samples.set(key, [...(samples.get(key) ?? []), ms]);
  };
  let missed = 0;
  let echoes = 0;
  const started = performance.now();
  try {
    const [a, b, c] = mesh.platforms;
    if (!a || !b || !c) throw new Error('no platforms');
    const today = new Date();
    // 1–3 nights each, back to back, never overlapping, so every booking adds nights no peer explains.
    const lengths = [1, 2, 1, 3, 1];
    let offset = 3;
    const bHeadsBefore = mesh.heads[1]!.length;
    for (let i = 0; i < bookings; i++) {
      const nights = lengths[i % lengths.length]!;
      const stay = { start: addDays(today, offset), end: addDays(today, offset + nights) };
      offset += nights;
      const booked = await request(`${mesh.sidecar(1)}/bookings/${listing}`, {
        method: 'POST',
        body: JSON.stringify(stay),
        headers: { 'content-type': 'application/json' },
      });
      await booked.body.dump();
      const t0 = performance.now();
      if (booked.statusCode < 200 || booked.statusCode > 299) throw new Error(`booking failed: ${booked.statusCode}`);
      const has = (p: Platform): boolean => (p.imported().B ?? []).some((s) => s.start === stay.start);
      // Landed: A and C show the stay, and the refresh that imported it has answered.
      const refreshed = (j: number) => mesh.refreshes[j]!.find((r) => r.calledAt >= t0)?.answeredAt !== undefined;
      const landed = () => has(a) && has(c) && refreshed(0) && refreshed(2);
      const deadline = t0 + 10_000;
      while (!landed() && performance.now() < deadline) await sleep(1);
      if (!landed()) missed += 1;
      for (const j of others) {
        const who = names[j]!;
        const head = mesh.heads[j]!.find((at) => at >= t0);
        add(`${who} head`, head === undefined ? undefined : head - t0);
        const refresh = mesh.refreshes[j]!.find((r) => r.calledAt >= t0);
        add(`${who} refresh`, refresh && refresh.calledAt - t0);
        add(`${who} import`, refresh?.answeredAt === undefined ? undefined : refresh.answeredAt - t0);
      }
    }
    // Echoes show up as HEADs at B's sidecar: give the last re-reads (0 ms after refresh) a moment.
    await sleep(300);
    echoes = mesh.heads[1]!.length - bHeadsBefore;
  } finally {
    await mesh.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const polling = 60 * 60 * 1000;
  const rows = [
    `${bookings} bookings on B, one after another (each waits for A and C to have imported it); the platform exports `
    + 'answer after 10 ms; `push.debounce: 0`; three platforms, three sidecars and this driver share one process. '
    + 'Times from the booking\'s 2xx (B\'s sidecar) to:',
    '',
    '| at | event | p50 ms | p99 ms | max ms | n | p50 × polling average (30 min) |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  const events: [string, string][] = [
    ['head', 'iPP HEAD arrives at its sidecar'],
    ['refresh', 'its sidecar calls refresh (sync now)'],
    ['import', 'the platform\'s import answered'],
  ];
  let worstP99 = 0;
  for (const who of ['A', 'C']) {
    for (const [key, what] of events) {
      const list = [...(samples.get(`${who} ${key}`) ?? [])].sort((x, y) => x - y);
      if (key === 'refresh') worstP99 = Math.max(worstP99, pct(list, 0.99));
      rows.push(`| ${who} | ${what} | ${fmt(pct(list, 0.5), 1)} | ${fmt(pct(list, 0.99), 1)} | ${fmt(list.at(-1) ?? Number.NaN, 1)}`
        + ` | ${list.length} | ${(pct(list, 0.5) / (polling / 2)).toExponential(1)} |`);
    }
  }
  rows.push(`| any | hourly polling (baseline) | 1,800,000 | 3,564,000 | 3,600,000 | | 1 |`);
  rows.push('');
  rows.push(`Bookings not imported by both within 10 s: ${missed}. Echo HEADs back at B's sidecar: ${echoes}. `
    + `Wall time ${fmt(seconds, 1)} s.`);
  rows.push(`Goal p99 ≤ 250 ms to the refresh call (worst of A and C: ${fmt(worstP99, 1)} ms) — ${verdict(worstP99 <= 250)}`);
  return rows.join('\n');
}

type Flood = {
  sent: number; answered: number; errors: number; non2xx: number; statuses: string; seconds: number;
  p50Ms: number; p99Ms: number; maxMs: number;
};

async function flood(url: string, rate: number, seconds: number): Promise<Flood> {
  return runJsonChild<Flood>('bench/fixtures/push-flood.ts', [url, String(rate), String(seconds)]);
}

/** The sidecar's own count of feed answers, and of those it finished within 5 ms (its duration histogram). */
export async function feedAnswerTimes(sidecar: string): Promise<{ count: number; within5ms: number }> {
  const text = await (await request(`${sidecar}/_icalpush/metrics`)).body.text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    count: value(/^icalpush_request_duration_seconds_count\{route="feed"\} (\d+)$/m),
    within5ms: value(/^icalpush_request_duration_seconds_bucket\{route="feed",le="0\.005"\} (\d+)$/m),
  };
}

/** 2: 2,000 HEAD/s on a known listing's feed (and on an unknown one): answer times and what they cause. */
async function inboundFlood(rate: number, seconds: number, rounds: number): Promise<string> {
  const world = await startWorld();
  const children: ChildProcess[] = [];
  try {
    const listing = 'flood-listing';
    const sidecar = await startApp({
      listen: '127.0.0.1:0',
      upstream: world.url,
      store: 'memory',
      feeds: [{ path: '/calendar/{listing}.ics' }],
      listings: { [listing]: { peers: [{ name: 'peer-1', url: `${world.url}/peer-1.ics` },
        { name: 'peer-2', url: `${world.url}/peer-2.ics` }] } },
      push: { debounce: '5m', watch: 0 },
      refresh: { url: `${world.url}/refresh/{listing}` },
    }, children);
    // The own feed read once, so HEADs are answered from a snapshot.
    await (await request(`${sidecar}/calendar/${listing}.ics`)).body.dump();
    const isPeer = (p: string) => p.startsWith('/peer-');
    const isRefresh = (p: string) => p.startsWith('/refresh/');
    const isOwn = (p: string) => p.startsWith('/calendar/');

    const before = count(world);
    // Warm-up (JIT, the sender's 64 connections) on the unknown path, which costs nothing by design.
    await flood(`${sidecar}/calendar/not-in-the-map.ics`, rate, 1);
    const unknown = await flood(`${sidecar}/calendar/not-in-the-map.ics`, rate, 2);
    await sleep(300);
    const unknownOut = count(world) - before;

    const runs: Flood[] = [];
    const ownBefore = count(world, isOwn);
    const timesBefore = await feedAnswerTimes(sidecar);
    const floodStart = performance.now();
    for (let i = 0; i < rounds; i++) runs.push(await flood(`${sidecar}/calendar/${listing}.ics`, rate, seconds));
    const timesAfter = await feedAnswerTimes(sidecar);
    const answeredBySidecar = timesAfter.count - timesBefore.count;
    const within5ms = (timesAfter.within5ms - timesBefore.within5ms) / answeredBySidecar;
    await sleep(300);
    const windowSeconds = (performance.now() - floodStart) / 1000;
    const peerReads = count(world, isPeer);
    const refreshes = count(world, isRefresh);
    const ownReads = count(world, isOwn) - ownBefore;

    // Calibration: the same load on a bare node:http server (this process, otherwise idle).
    const bare = await flood(`${world.url}/calibration.ics`, rate, seconds);

    const rows = [
      `Open-loop HEADs at ${rate}/s from a separate process (undici Pool, 64 connections) on one icalpush (own process) `
      + 'whose listing has two fake peer feeds and a fake refresh endpoint; `push.debounce: 5m`.',
      '',
      '| target | round | sent | answered/s | p50 ms | p99 ms | max ms | errors + non-2xx | statuses |',
      '|---|---|---:|---:|---:|---:|---:|---:|---|',
    ];
    const row = (target: string, round: string, r: Flood) => rows.push(`| ${target} | ${round} | ${r.sent} `
      + `| ${fmt(r.answered / r.seconds)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.maxMs, 1)} `
      + `| ${r.errors + r.non2xx} | ${r.statuses} |`);
    for (const [i, r] of runs.entries()) row('known listing', `${i + 1} (${seconds} s)`, r);
    const p99s = runs.map((r) => r.p99Ms);
    rows.push(`| known listing | **median** | | ${fmt(median(runs.map((r) => r.answered / r.seconds)))} `
      + `| ${fmt(median(runs.map((r) => r.p50Ms)), 2)} | ${fmt(median(p99s), 2)} | | `
      + `${runs.reduce((s, r) => s + r.errors + r.non2xx, 0)} | |`);
    row('unknown listing', '1 (2 s)', unknown);
    row('bare node:http server (calibration)', `1 (${seconds} s)`, bare);
    rows.push('');
    const heads = runs.reduce((s, r) => s + r.sent, 0);
    rows.push(`What the ${heads} HEADs on the known listing caused in ${fmt(windowSeconds, 1)} s (one debounce window): `
      + `${peerReads} peer feed reads (2 peers), ${refreshes} refresh calls, ${ownReads} own-feed re-reads `
      + '(scheduled 0, 2, 5, 15 s … after the refresh).');
    rows.push(`What the ${unknown.sent} HEADs on an unknown listing caused: ${unknownOut} outbound requests.`);
    rows.push(`The sidecar's own answer time (request in → answer written, its \`icalpush_request_duration_seconds\` `
      + `histogram, millisecond clock): ${fmt(within5ms * 100, 2)}% of the ${answeredBySidecar} HEADs within 5 ms.`);
    rows.push(`Goals: p99 ≤ 5 ms — at the sidecar ${verdict(within5ms >= 0.99)} (${fmt(within5ms * 100, 2)}% within 5 ms); `
      + `as the sender saw it ${verdict(median(p99s) <= 5)} (median p99 ${fmt(median(p99s), 2)} ms, `
      + `${fmt(median(p99s) / bare.p99Ms, 2)} × the bare server's p99 on this machine); `
      + `refreshes ≤ 2 per window (${refreshes}) — ${verdict(refreshes <= 2)}; `
      + `unknown listing costs 0 requests (${unknownOut}) — ${verdict(unknownOut === 0)}`);
    return rows.join('\n');
  } finally {
    for (const child of children) await stop(child);
    await world.close();
  }
}

type WatchRun = { perSec: number; maxSlice: number; minSlice: number; meanSlice: number };

/** Upstream GETs the watch causes over [1 s, 1 s + seconds) after listen, in 100 ms slices. */
async function watchRun(listings: number, watchS: number, seconds: number, delayMs: number): Promise<WatchRun> {
  const world = await startWorld(delayMs);
  const children: ChildProcess[] = [];
  try {
    const ids = Array.from({ length: listings }, (_, i) => `listing-${String(i).padStart(5, '0')}`);
    await startApp({
      listen: '127.0.0.1:0',
      upstream: world.url,
      store: 'memory',
      feeds: [{ path: '/calendar/{listing}.ics' }],
      listings: Object.fromEntries(ids.map((id) => [id, {}])),
      push: { watch: `${watchS}s` },
    }, children);
    const from = performance.now() + 1_000;
    const to = from + seconds * 1000;
    await sleep(to - performance.now() + 100);
    const slices = new Array<number>(seconds * 10).fill(0);
    for (const list of world.hits.values()) {
      for (const at of list) if (at >= from && at < to) slices[Math.floor((at - from) / 100)]! += 1;
    }
    const total = slices.reduce((s, n) => s + n, 0);
    return { perSec: total / seconds, maxSlice: Math.max(...slices), minSlice: Math.min(...slices),
      meanSlice: total / slices.length };
  } finally {
    for (const child of children) await stop(child);
    await world.close();
  }
}

/** 3: the watch's upstream load, measured at 200 listings / 2 s and extrapolated to 10,000 / 60 s. */
async function watchLoad(): Promise<string> {
  const listings = 200;
  const watchS = 2;
  const seconds = 6;
  const expected = listings / watchS;
  const rows = [
    `One icalpush (own process), ${listings} listings, \`push.watch: ${watchS}s\`, a fake upstream counting feed GETs `
    + `over ${seconds} s (from 1 s after listen), in 100 ms slices. Expected ${fmt(expected)} req/s.`,
    '',
    '| upstream answers after | measured req/s | × expected | mean per 100 ms | max per 100 ms | min per 100 ms | '
    + 'max × mean | extrapolated to 10,000 listings at 60 s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const full = 10_000 / 60;
  for (const delayMs of [0, 50]) {
    const r = await watchRun(listings, watchS, seconds, delayMs);
    // Keeping up, the load scales with listings / interval; falling behind, the measured rate is the
    // watch's ceiling whatever the listing count, and each listing waits 10,000 / ceiling seconds.
    const keepsUp = r.perSec >= 0.95 * expected;
    const at10k = keepsUp ? `${fmt(full * (r.perSec / expected))} req/s, every listing every 60 s`
      : `≤ ${fmt(r.perSec)} req/s: every listing every ${fmt(10_000 / r.perSec)} s, not 60 s`;
    rows.push(`| ${delayMs} ms | ${fmt(r.perSec, 1)} | ${fmt(r.perSec / expected, 2)} | ${fmt(r.meanSlice, 1)} `
      + `| ${r.maxSlice} | ${r.minSlice} | ${fmt(r.maxSlice / r.meanSlice, 2)} | ${at10k} |`);
  }
  rows.push('');
  rows.push(`Arithmetic: 10,000 listings / 60 s = ${fmt(full, 1)} req/s. The watch reads at most 16 feeds at once `
    + '(src/push/push.ts `watchConcurrency`), so its ceiling is 16 / upstream latency: 320 req/s at 50 ms; '
    + `${fmt(16 / (10_000 / 60) * 1000, 0)} ms is the slowest upstream that keeps 10,000 listings at 60 s.`);
  return rows.join('\n');
}

/** Runs the three push benchmarks; returns their tables. */
export async function main(): Promise<string> {
  const parts = [
    '### Propagation', await propagation(100),
    '### Inbound flood', await inboundFlood(2_000, 5, 3),
    '### Watch load', await watchLoad(),
  ];
  return parts.join('\n\n');
}
