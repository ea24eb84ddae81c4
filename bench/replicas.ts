// Replicas benchmark (SPEC "Several replicas"): one sidecar on SQLite, one on Redis and three on one Redis,
// side by side in one run: feed GET throughput (autocannon), HEAD answer times, booking → peer HEAD
// propagation with every booking's HEADs counted per peer (missing and duplicates), and what each request
// costs in Redis: commands executed (INFO commandstats, idle rate subtracted) and round trips (MONITOR, on a
// sequential pass, by command and key). Every sidecar is its own `node src/main.ts serve` on 127.0.0.1; the
// fake platform and peers are node:http servers in this process; the three replicas are reached in round robin
// by the load generators themselves. Run: `npm run bench -- replicas` (about a minute and a half);
// BENCH_PEER_HEAD_MS=50 makes the peers answer HEADs that much later, BENCH_SECONDS and BENCH_BOOKINGS shorten it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import { request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../src/demo/mesh.ts';
import * as scripts from '../src/store/redis-scripts.ts';
import { type RedisServer, startRedis } from '../test/helpers/redis.ts';
import { fmt, runJsonChild } from './passthrough.ts';
import { feedAnswerTimes } from './push.ts';

const root = new URL('..', import.meta.url).pathname;
const listing = 'beach-house';
const listingFeed = `/calendar/${listing}.ics`;
// A feed path with a snapshot and no listing: a HEAD there is answered like any, and starts no inbound run
// (a listing's first HEAD would re-read its own feed 0, 2, 5, 15 … s later, in the middle of what is measured).
const unlistedFeed = '/calendar/unlisted.ics';
const baseEvents = 50;
const bookings = Number(process.env.BENCH_BOOKINGS ?? 50);
const getSeconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = 12;
const headRate = 500;
const headRounds = 3;
const headSeconds = 2;
const idleMs = 2_000;
const bookingTimeoutMs = 3_000;
// The 2 s re-read after a trigger (src/push/rereads.ts), and a margin: a late duplicate shows up by then.
const settleMs = 2_500;
const accountingRequests = 100;
const accountingBookings = 10;
// How long the peers take to answer a HEAD (they record it on arrival): 0 by default, a real platform's tens of ms
// with BENCH_PEER_HEAD_MS.
const peerHeadMs = Number(process.env.BENCH_PEER_HEAD_MS ?? 0);

type Redis = ReturnType<typeof createClient>;

/** Nearest-rank percentile of an ascending list. */
function pct(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

const median = (values: number[]) => pct([...values].sort((a, b) => a - b), 0.5);

const day = (offset: number) => {
  const d = new Date();
  d.setUTCHours(0, 0, 0, 0);
  return new Date(d.getTime() + offset * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
};

const vevent = (uid: string, start: number, nights: number) => [
  'BEGIN:VEVENT', 'DTSTAMP:20250101T000000Z', `DTSTART;VALUE=DATE:${day(start)}`,
  `DTEND;VALUE=DATE:${day(start + nights)}`, `UID:${uid}@bench.example`, 'SUMMARY:Reserved', 'END:VEVENT',
];

const calendar = (name: string, events: string[][]) => [
  'BEGIN:VCALENDAR', 'VERSION:2.0', `PRODID:-//${name}//bench//EN`, ...events.flat(), 'END:VCALENDAR', '',
].join('\r\n');

type Peer = { name: string; url: string; heads: number[] };
type World = { upstream: string; peers: Peer[]; close(): Promise<void> };

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The platform (its listing's feed: 50 stays 400+ days ahead, plus one night per booking 10+ days ahead;
 * `POST /bookings/{listing}` books the next free night and answers 201) and two peers that record every
 * HEAD's arrival and answer GETs with an empty calendar. No validators: a legacy feed.
 */
async function startWorld(): Promise<World> {
  const base = Array.from({ length: baseEvents }, (_, i) => vevent(`stay-${i}`, 400 + i * 6, 2));
  const booked: string[][] = [];
  const platform = await listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    req.resume();
    if (req.method === 'POST' && path === `/bookings/${listing}`) {
      booked.push(vevent(`booking-${booked.length}`, 10 + booked.length * 2, 1));
      res.writeHead(201, { 'content-type': 'application/json' }).end(`{"booking":${booked.length}}`);
      return;
    }
    const feed = /^\/calendar\/([^/]+)\.ics$/.exec(path)?.[1];
    if ((req.method === 'GET' || req.method === 'HEAD') && (feed === listing || feed === 'unlisted')) {
      const body = calendar(feed, feed === listing ? [...base, ...booked] : base);
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.writeHead(404, { 'content-length': '0' }).end();
  });
  const peers: Peer[] = [];
  const servers = [platform];
  for (const name of ['peer-1', 'peer-2']) {
    const heads: number[] = [];
    const empty = calendar(name, []);
    const server = await listen((req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        heads.push(performance.now());
        const answer = () => res.writeHead(200, { 'content-type': 'text/calendar' }).end();
        if (peerHeadMs > 0) setTimeout(answer, peerHeadMs);
        else answer();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/calendar', 'content-length': Buffer.byteLength(empty) }).end(empty);
    });
    servers.push(server);
    peers.push({ name, url: `${server.url}/ical/${listing}.ics`, heads });
  }
  return {
    upstream: platform.url,
    peers,
    async close() {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

type Sidecar = { url: string; child: ChildProcess; output: () => string };

/** One `icalpush serve` child on a free port, once its readyz answers 200. */
async function startSidecar(dir: string, name: string, store: string, world: World,
  children: ChildProcess[]): Promise<Sidecar> {
  const port = await freePort();
  const config = {
    listen: `127.0.0.1:${port}`,
    upstream: world.upstream,
    store,
    feeds: [{ path: '/calendar/{listing}.ics' }],
    listings: { [listing]: { peers: world.peers.map((p) => ({ name: p.name, url: p.url })) } },
    push: { watch: 0, triggers: [{ method: 'POST', path: '/bookings/{listing}' }] },
    log: { level: 'warn' },
  };
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify(config));
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--config', file], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const res = await request(`${url}/_icalpush/readyz`);
      await res.body.dump();
      if (res.statusCode === 200) return { url, child, output: () => output };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`sidecar ${name} did not come up: ${output.slice(-1_000)}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Commands Redis executed, by name (INFO commandstats: those run inside a Lua script included). */
async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const text = String(await redis.sendCommand(['INFO', 'commandstats']));
  const stats = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(m[1]!, Number(m[2]));
  return stats;
}

// This bench's own commands, never a sidecar's.
const ownCommands = new Set(['info', 'echo', 'monitor', 'hello', 'select']);
const isOwn = (command: string) => ownCommands.has(command) || command.startsWith('client');

type Counted = { ms: number; byCommand: Map<string, number> };
const sum = (byCommand: Map<string, number>) => [...byCommand.values()].reduce((s, n) => s + n, 0);

/** Runs `fn` and counts the commands Redis executed meanwhile (none without Redis). */
async function counted<T>(redis: Redis | undefined, fn: () => Promise<T>): Promise<{ result: T; counted?: Counted }> {
  if (!redis) return { result: await fn() };
  const before = await commandStats(redis);
  const started = performance.now();
  const result = await fn();
  const ms = performance.now() - started;
  const after = await commandStats(redis);
  const byCommand = new Map<string, number>();
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0);
    if (delta > 0 && !isOwn(command)) byCommand.set(command, delta);
  }
  return { result, counted: { ms, byCommand } };
}

/** Per request, after subtracting the idle rate over the phase's duration: in total and by command. */
function perRequest(phase: Counted | undefined, idle: Counted | undefined, requests: number) {
  if (!phase || !idle || requests === 0) return undefined;
  const byCommand = new Map<string, number>();
  for (const [command, calls] of phase.byCommand) {
    const background = ((idle.byCommand.get(command) ?? 0) / idle.ms) * phase.ms;
    byCommand.set(command, (calls - background) / requests);
  }
  const total = (sum(phase.byCommand) - (sum(idle.byCommand) / idle.ms) * phase.ms) / requests;
  return { total, byCommand };
}

// Which operation of the Redis store an EVALSHA runs (src/store/redis-scripts.ts).
const scriptNames = new Map(Object.entries(scripts).map(([name, text]) =>
  [createHash('sha1').update(text).digest('hex'), name.replace(/Script$/, '')]));

/** `GET push_outbox`, `claim ~due:push_outbox`: the command (a script by its operation) and its key's namespace. */
function labelOf(command: string, args: string[]): string {
  const script = command === 'evalsha' ? scriptNames.get(args[1] ?? '') : undefined;
  const key = command === 'evalsha' || command === 'eval' ? args[3] : args[1];
  const space = /^icalpush:(~due:[^:]+|[^:]+)/.exec(key ?? '')?.[1];
  const name = script === undefined ? command.toUpperCase() : `${script} (Lua)`;
  return space === undefined ? name : `${name} ${space}`;
}

type Monitor = {
  /** Marks a point in the command stream; resolves once the monitor has seen it. */
  mark(label: string): Promise<void>;
  /** Round trips (commands sent by a client; a script's own calls not counted) by command and key namespace,
   * between marks. */
  between(from: string, to: string): Map<string, number>;
  close(): Promise<void>;
};

/**
 * A MONITOR connection: every command Redis runs, in order, a script's own calls marked `lua`. Marks are
 * `ECHO` commands sent on another connection, so they sit in the stream exactly where they ran.
 */
async function startMonitor(url: string, redis: Redis): Promise<Monitor> {
  const client = createClient({ url });
  await client.connect();
  const lines: { source: string; command: string; arg: string; label: string }[] = [];
  await client.monitor((reply: string) => {
    const source = /^\d+\.\d+ \[\d+ ([^\]]+)\]/.exec(reply)?.[1];
    const args = [...reply.slice(0, 2_000).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    const command = args[0]?.toLowerCase();
    if (source === undefined || command === undefined) return;
    lines.push({ source, command, arg: args[1] ?? '', label: labelOf(command, args) });
  });
  const indexOf = (label: string) => lines.findIndex((l) => l.command === 'echo' && l.arg === `mark:${label}`);
  return {
    async mark(label) {
      await redis.sendCommand(['ECHO', `mark:${label}`]);
      const deadline = performance.now() + 2_000;
      while (indexOf(label) === -1 && performance.now() < deadline) await sleep(1);
    },
    between(from, to) {
      const byCommand = new Map<string, number>();
      const start = indexOf(from);
      const end = indexOf(to);
      if (start === -1 || end === -1) return byCommand;
      for (const line of lines.slice(start + 1, end)) {
        if (line.source === 'lua' || isOwn(line.command)) continue;
        byCommand.set(line.label, (byCommand.get(line.label) ?? 0) + 1);
      }
      return byCommand;
    },
    async close() {
      client.destroy();
    },
  };
}

type Throughput = {
  reqPerSec: number; requests: number; p50Ms: number; p99Ms: number; errors: number; non2xx: number;
};

/** autocannon in its own process, its connections spread over `urls` in turn (connection i → urls[i % n]). */
async function autocannon(urls: string[], seconds: number): Promise<Throughput> {
  const args = [join(root, 'node_modules/autocannon/autocannon.js'), '-c', String(connections), '-d', String(seconds), '-j'];
  const child = spawn(process.execPath, [...args, ...urls], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await once(child, 'exit');
  const r = JSON.parse(out) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  return { reqPerSec: r.requests.average, requests: r.requests.total, p50Ms: r.latency.p50, p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

type Open = {
  sent: number; warmup: number; answered: number; errors: number; non2xx: number; p50Ms: number; p99Ms: number;
};
type OpenRun = Omit<Open, 'p50Ms' | 'p99Ms'> & { p50Ms: number | null; p99Ms: number | null };
type Heads = Open & { within5ms: number };

/** `headRounds` open-loop rounds, each from a new process after 0.5 s unmeasured; the median round's
 * percentiles, everything sent added up, and the share the sidecars' own histograms answered within 5 ms. */
async function headRun(urls: string[]): Promise<Heads> {
  const answerTimes = async () => {
    const all = await Promise.all(urls.map((u) => feedAnswerTimes(u)));
    return { count: all.reduce((s, t) => s + t.count, 0), within5ms: all.reduce((s, t) => s + t.within5ms, 0) };
  };
  const before = await answerTimes();
  const runs: Open[] = [];
  for (let i = 0; i < headRounds; i++) {
    const run = await runJsonChild<OpenRun>('bench/fixtures/replica-load.ts',
      ['HEAD', String(headRate), '0.5', String(headSeconds), ...urls.map((u) => `${u}${unlistedFeed}`)]);
    // A percentile that fell on an unanswered HEAD comes as null (JSON has no Infinity).
    runs.push({ ...run, p50Ms: run.p50Ms ?? Number.POSITIVE_INFINITY, p99Ms: run.p99Ms ?? Number.POSITIVE_INFINITY });
  }
  const after = await answerTimes();
  const total = (key: 'sent' | 'warmup' | 'answered' | 'errors' | 'non2xx') => runs.reduce((s, r) => s + r[key], 0);
  return {
    sent: total('sent'), warmup: total('warmup'), answered: total('answered'), errors: total('errors'),
    non2xx: total('non2xx'), p50Ms: median(runs.map((r) => r.p50Ms)), p99Ms: median(runs.map((r) => r.p99Ms)),
    within5ms: (after.within5ms - before.within5ms) / (after.count - before.count),
  };
}

async function get(url: string): Promise<void> {
  const res = await request(url);
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
}

async function head(url: string): Promise<void> {
  const res = await request(url, { method: 'HEAD' });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`HEAD ${url}: ${res.statusCode}`);
}

type Bookings = {
  /** Trigger answered → HEAD received, every peer of every booking that got one (ms). */
  latencies: number[];
  /** Per peer: bookings whose window had exactly one HEAD, none, and the HEADs beyond one. */
  exact: number;
  missing: number;
  extra: number;
  failed: number;
  done: number;
};

/**
 * `count` bookings one after another, booking i through sidecar i mod n; each waits until every peer had a
 * HEAD (3 s at most). A booking's HEADs are those arriving from its POST until the next POST (the last one's
 * until `settleMs` after it), so a late duplicate is counted where it lands.
 */
async function book(sidecars: string[], world: World, count: number): Promise<Bookings> {
  const sentAt: number[] = [];
  const latencies: number[] = [];
  let failed = 0;
  const phaseStart = performance.now();
  for (let i = 0; i < count; i++) {
    if (performance.now() - phaseStart > 30_000) break;
    sentAt.push(performance.now());
    const res = await request(`${sidecars[i % sidecars.length]}/bookings/${listing}`, {
      method: 'POST',
      body: '{"nights":1}',
      headers: { 'content-type': 'application/json' },
    });
    await res.body.dump();
    const t0 = performance.now();
    if (res.statusCode !== 201) {
      failed += 1;
      continue;
    }
    const arrived = () => world.peers.every((p) => p.heads.some((at) => at >= t0));
    const deadline = t0 + bookingTimeoutMs;
    while (!arrived() && performance.now() < deadline) await sleep(1);
    for (const peer of world.peers) {
      const at = peer.heads.find((a) => a >= t0);
      if (at !== undefined) latencies.push(at - t0);
    }
  }
  await sleep(settleMs);
  const end = performance.now();
  let exact = 0;
  let missing = 0;
  let extra = 0;
  for (const peer of world.peers) {
    for (const [i, from] of sentAt.entries()) {
      const to = sentAt[i + 1] ?? end;
      const n = peer.heads.filter((at) => at >= from && at < to).length;
      if (n === 0) missing += 1;
      else if (n === 1) exact += 1;
      else extra += n - 1;
    }
  }
  return { latencies: latencies.sort((a, b) => a - b), exact, missing, extra, failed, done: sentAt.length };
}

type PhaseCost = { total: number; byCommand: Map<string, number> } | undefined;
type Result = {
  name: string;
  feed: Throughput;
  head: Heads;
  bookings: Bookings;
  headsOutside: number;
  idlePerSec?: number;
  commands: { get: PhaseCost; head: PhaseCost; booking: PhaseCost };
  roundTrips?: { get: PhaseCost; head: PhaseCost; booking: PhaseCost };
};

/** One setup, from starting its sidecars to stopping them. */
async function measure(name: string, store: string, replicas: number, dir: string,
  redisServer: RedisServer | undefined): Promise<Result> {
  const world = await startWorld();
  const children: ChildProcess[] = [];
  let redis: Redis | undefined;
  let monitor: Monitor | undefined;
  try {
    if (redisServer) {
      redis = createClient({ url: redisServer.url });
      await redis.connect();
      await redis.sendCommand(['FLUSHALL']);
    }
    // Settled, not all: a failed start must not leave another still starting after `finally` ran.
    const starting = await Promise.allSettled(Array.from({ length: replicas },
      (_, i) => startSidecar(dir, `${name.replace(/\W+/g, '-')}-${i}`, store, world, children)));
    const failed = starting.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const started = starting.map((s) => (s as PromiseFulfilledResult<Sidecar>).value);
    const sidecars = started.map((s) => s.url);
    // Snapshots for both feeds on every replica (HEADs are answered from them), and one booking through each (its
    // first change reads the peers and warms the path); their re-reads done before anything is measured.
    for (const url of sidecars) {
      await get(`${url}${listingFeed}`);
      await get(`${url}${unlistedFeed}`);
    }
    await book(sidecars, world, sidecars.length);
    const headsBefore = world.peers.reduce((s, p) => s + p.heads.length, 0);

    const idle = await counted(redis, () => sleep(idleMs));
    await autocannon(sidecars.map((u) => `${u}${listingFeed}`), 1);
    const feed = await counted(redis, () => autocannon(sidecars.map((u) => `${u}${listingFeed}`), getSeconds));
    const headed = await counted(redis, () => headRun(sidecars));
    const headsBeforeBookings = world.peers.reduce((s, p) => s + p.heads.length, 0);
    const booked = await counted(redis, () => book(sidecars, world, bookings));

    let roundTrips: Result['roundTrips'];
    if (redis && redisServer) {
      monitor = await startMonitor(redisServer.url, redis);
      const between = (from: string, to: string, ms: number, requests: number, idleTrips: Map<string, number>) =>
        perRequest({ ms, byCommand: monitor!.between(from, to) }, { ms: idleMs, byCommand: idleTrips }, requests);
      await monitor.mark('idle');
      await sleep(idleMs);
      await monitor.mark('idle-end');
      const idleTrips = monitor.between('idle', 'idle-end');
      const timed = async (from: string, to: string, fn: () => Promise<unknown>) => {
        await monitor!.mark(from);
        const t = performance.now();
        await fn();
        const ms = performance.now() - t;
        await monitor!.mark(to);
        return ms;
      };
      const getMs = await timed('get', 'get-end', async () => {
        for (let i = 0; i < accountingRequests; i++) await get(`${sidecars[i % sidecars.length]}${listingFeed}`);
      });
      const headMs = await timed('head', 'head-end', async () => {
        for (let i = 0; i < accountingRequests; i++) await head(`${sidecars[i % sidecars.length]}${unlistedFeed}`);
      });
      let accounted = 0;
      const bookMs = await timed('book', 'book-end', async () => {
        accounted = (await book(sidecars, world, accountingBookings)).done;
      });
      roundTrips = {
        get: between('get', 'get-end', getMs, accountingRequests, idleTrips),
        head: between('head', 'head-end', headMs, accountingRequests, idleTrips),
        booking: between('book', 'book-end', bookMs, accounted, idleTrips),
      };
    }
    const result: Result = {
      name,
      feed: feed.result,
      head: headed.result,
      bookings: booked.result,
      headsOutside: headsBeforeBookings - headsBefore,
      commands: {
        get: perRequest(feed.counted, idle.counted, feed.result.requests),
        head: perRequest(headed.counted, idle.counted, headed.result.sent + headed.result.warmup),
        booking: perRequest(booked.counted, idle.counted, booked.result.done),
      },
      ...(roundTrips ? { roundTrips } : {}),
    };
    if (idle.counted) result.idlePerSec = (sum(idle.counted.byCommand) / idle.counted.ms) * 1000;
    for (const s of started) {
      if (s.child.exitCode !== null) throw new Error(`sidecar ${s.url} exited: ${s.output().slice(-1_000)}`);
    }
    return result;
  } finally {
    await monitor?.close();
    for (const child of children) await kill(child);
    if (redis?.isOpen) await redis.close();
    await world.close();
  }
}

/** The average and p99 of one Redis round trip from this process: 1,000 sequential PINGs. */
async function pingTimes(url: string): Promise<{ avgMs: number; p99Ms: number }> {
  const redis = createClient({ url });
  await redis.connect();
  try {
    for (let i = 0; i < 100; i++) await redis.sendCommand(['PING']);
    const times: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 1_000; i++) {
      const t = performance.now();
      await redis.sendCommand(['PING']);
      times.push(performance.now() - t);
    }
    const avgMs = (performance.now() - started) / 1_000;
    return { avgMs, p99Ms: pct(times.sort((a, b) => a - b), 0.99) };
  } finally {
    await redis.close();
  }
}

const cost = (c: PhaseCost) => (c ? fmt(c.total, 1) : '–');

/** Runs the replicas benchmark and returns its tables as text. */
export async function main(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-bench-replicas-'));
  let redisServer: RedisServer | undefined;
  const started = performance.now();
  try {
    redisServer = await startRedis();
    const url = `${redisServer.url}/0`;
    const ping = await pingTimes(url);
    const results = [
      await measure('1 × SQLite', join(dir, 'sqlite', 'icalpush.db'), 1, dir, undefined),
      await measure('1 × Redis', url, 1, dir, redisServer),
      await measure('3 × Redis', url, 3, dir, redisServer),
    ];
    const seconds = (performance.now() - started) / 1000;
    const rows = [
      `| setup | feed GET req/s | GET p50 ms | GET p99 ms | HEAD p50 ms | HEAD p99 ms | HEAD within 5 ms at the sidecar `
      + '| booking → peer HEAD p50 ms | p99 ms | max ms | booking × peer: exactly one HEAD / missing / extra |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ];
    for (const r of results) {
      const b = r.bookings;
      const getErrors = r.feed.errors + r.feed.non2xx;
      const headErrors = r.head.errors + r.head.non2xx + (r.head.sent - r.head.answered);
      rows.push(`| ${r.name} | ${fmt(r.feed.reqPerSec)}${getErrors ? ` (${getErrors} errors)` : ''} | ${fmt(r.feed.p50Ms)} `
        + `| ${fmt(r.feed.p99Ms)} | ${fmt(r.head.p50Ms, 2)}${headErrors ? ` (${headErrors} errors)` : ''} `
        + `| ${fmt(r.head.p99Ms, 2)} | ${fmt(r.head.within5ms * 100, 2)}% | ${fmt(pct(b.latencies, 0.5), 1)} `
        + `| ${fmt(pct(b.latencies, 0.99), 1)} | ${fmt(b.latencies.at(-1) ?? Number.NaN, 1)} `
        + `| ${b.exact} / ${b.missing} / ${b.extra}${b.failed ? ` (${b.failed} triggers not 201)` : ''} |`);
    }
    rows.push('');
    rows.push('| setup | Redis commands per feed GET, under load | per HEAD | per booking | idle commands/s '
      + '| round trips per GET, one at a time | per HEAD | per booking |');
    rows.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      const trips = r.roundTrips;
      rows.push(`| ${r.name} | ${cost(r.commands.get)} | ${cost(r.commands.head)} | ${cost(r.commands.booking)} `
        + `| ${r.idlePerSec === undefined ? '–' : fmt(r.idlePerSec, 1)} | ${cost(trips?.get)} | ${cost(trips?.head)} `
        + `| ${cost(trips?.booking)} |`);
    }
    rows.push('');
    const shared = results.filter((r) => r.roundTrips);
    const phases = ['get', 'head', 'booking'] as const;
    const labels = new Set(shared.flatMap((r) => phases.flatMap((p) => [...r.roundTrips![p]?.byCommand.keys() ?? []])));
    const value = (r: Result, p: typeof phases[number], label: string) => r.roundTrips![p]?.byCommand.get(label) ?? 0;
    const last = shared.at(-1);
    const ordered = [...labels]
      .filter((label) => shared.some((r) => phases.some((p) => value(r, p, label) >= 0.05)))
      .sort((x, y) => (last ? value(last, 'booking', y) - value(last, 'booking', x) : 0) || x.localeCompare(y));
    rows.push(`| round trips per request, by command and key | ${shared.map((r) => `${r.name}: GET | HEAD | booking`)
      .join(' | ')} |`);
    rows.push(`|---|${shared.map(() => '---:|---:|---:').join('|')}|`);
    for (const label of ordered) {
      // What the idle subtraction leaves of background commands is noise around 0, never "-0.0".
      const shown = (v: number) => fmt(Math.abs(v) < 0.05 ? 0 : v, 1);
      rows.push(`| ${label} | ${shared.map((r) => phases.map((p) => shown(value(r, p, label))).join(' | ')).join(' | ')} |`);
    }
    rows.push('');
    const cores = availableParallelism();
    const b = results[0]!.bookings;
    rows.push(`Machine: ${cores} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}); one Redis round trip from this `
      + `process (1,000 sequential PINGs): average ${fmt(ping.avgMs * 1000)} µs, p99 ${fmt(ping.p99Ms * 1000)} µs. `
      + `Wall time ${fmt(seconds)} s.`);
    rows.push('');
    rows.push(`- Every sidecar is its own \`node src/main.ts serve\` process (\`log.level: warn\`, \`push.watch: 0\`, `
      + `trigger \`POST /bookings/{listing}\`); the platform (a ${baseEvents}-event feed, no validators, one night added `
      + 'per booking) and the two peers are node:http servers in the bench process; Redis is one local redis-server '
      + `(no persistence), flushed before each Redis setup. The peers answer a HEAD ${peerHeadMs ? `${peerHeadMs} ms `
        + 'after it arrived' : 'at once'} (\`BENCH_PEER_HEAD_MS\`); they record its arrival.`);
    rows.push(`- Feed GET: autocannon, ${connections} connections for ${getSeconds} s after a 1 s warm-up, on the `
      + `listing's feed; with 3 replicas its connections go to them in turn (${connections / 3} each). `
      + 'Latencies in whole milliseconds (autocannon\'s resolution).');
    rows.push(`- HEAD: open loop at ${headRate}/s, ${headRounds} rounds of ${headSeconds} s (each after 0.5 s unmeasured) `
      + 'from its own process, in round robin over the replicas; the median round\'s percentiles, in fractional ms, as '
      + 'the sender saw them, and the share the sidecars\' own `icalpush_request_duration_seconds` histograms put '
      + `within 5 ms (their finest bucket). On \`${unlistedFeed}\`: a feed with a snapshot and no listing, so no `
      + 'inbound run (peer reads, refresh, re-reads) follows; the answer path is the one a listing\'s HEAD takes.');
    rows.push(`- Bookings: ${b.done} one after another (after one unmeasured through each replica, whose first change `
      + 'reads the peers\' feeds and runs cold), booking i through replica i mod n: the trigger\'s 201, a re-read of '
      + 'the feed, the decision, the outbox (10 ms coalescing), the HEAD. Each waits for a HEAD at both '
      + `peers (${bookingTimeoutMs / 1000} s at most); latency from the trigger's 201 to the HEAD's arrival. A booking's `
      + `HEADs are those from its POST to the next POST (the last one's: ${settleMs / 1000} s, past the 2 s re-read `
      + `after a trigger), per peer: exactly one, none (missing) or more (extra). HEADs at the peers during the idle, `
      + `GET and HEAD phases (none expected): ${results.map((r) => `${r.name} ${r.headsOutside}`).join(', ')}. `
      + 'Extra HEADs come when a change is queued while the previous HEAD to that peer is still in flight (a peer '
      + 'slow to answer, or a machine too busy to finish the bookkeeping after it): see `BENCH_PEER_HEAD_MS=50`.');
    rows.push('- Redis commands per request: `INFO commandstats` before and after each measured phase (warm-up '
      + 'requests included), divided by the requests of the phase, after subtracting the idle rate times the '
      + 'phase\'s duration: background commands (each replica asks the outbox what is due every second and writes '
      + `its heartbeat every 2 s) measured for ${idleMs / 1000} s at the start of each setup. They count what Redis executed, the calls a Lua script makes `
      + 'included (an EVALSHA whose script does a GET and a SET is 3): the work Redis does. Concurrent GETs of one '
      + 'feed share one upstream read, so under load a GET costs fewer commands than alone. A booking (2 peers) '
      + 'includes its re-reads, the peers\' feeds read, the outbox and the decision log.');
    rows.push(`- Round trips per request: a MONITOR connection on a second, sequential pass (${accountingRequests} GETs, `
      + `${accountingRequests} HEADs and ${accountingBookings} bookings, one at a time, round robin), counting the `
      + 'commands clients sent (a script\'s own calls are not round trips), idle rate subtracted likewise; the last '
      + 'table splits them by command (a Lua script by the store operation it is) and key namespace (the heartbeat\'s '
      + '`SET`/`SCAN`/`MGET replicas`, every 2 s, is background: what is left of it is noise around 0). Round trips × '
      + 'the round-trip time above bounds the Redis wait a request adds (some, like a booking\'s outbox work, happen '
      + 'after its answer).');
    rows.push(`- On one ${cores}-core machine the CPU-bound figures (req/s, latencies) do not scale with replicas: `
      + 'the replicas, Redis, the platform and the load generator share the same cores, so 3 replicas here measure '
      + 'contention, not capacity. What scales is the Redis cost per request: round trips × round-trip time is what '
      + 'each request adds, and commands per request × request rate is the load on the one Redis every replica shares.');
    return rows.join('\n');
  } finally {
    await redisServer?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
