// Feed benchmark: what the feed paths save and cost, side by side in one run. Bytes on the wire for
// a poll (plain, 304, enhanced-GET delta), feed GET throughput direct vs through icalpush, shared
// upstream fetches under a slow upstream, and the CPU and heap of re-reading a 10,000-event feed.
// Upstreams and icalpush run in their own processes; autocannon is driven from this one.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { autocannon, type Throughput } from './fixtures/autocannon.ts';
import { fmt, startProcess } from './passthrough.ts';

const root = new URL('..', import.meta.url).pathname;
const feedPath = '/calendar/4711.ics';
const enhanced = { prefer: 'subscribe-enhanced-get' };

/** An answer as it came off the socket: `body` de-chunked, still in its content coding. */
export type RawAnswer = {
  status: number;
  headers: Map<string, string>;
  headerBytes: number;
  bodyBytes: number;
  body: Buffer;
};

/** One GET on a fresh connection; counts the bytes as they come off the socket. */
export async function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  // No half-close: a server may drop a request whose client already sent FIN.
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  const raw = Buffer.concat(chunks);
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end).toString('latin1').split('\r\n');
  const parsed = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    parsed.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  const wire = raw.subarray(end + 4);
  return {
    status: Number(head[0]?.split(' ')[1]),
    headers: parsed,
    headerBytes: end + 4,
    bodyBytes: wire.length,
    body: parsed.get('transfer-encoding') === 'chunked' ? dechunk(wire) : wire,
  };
}

function dechunk(wire: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = wire.indexOf('\r\n', at);
    const size = Number.parseInt(wire.subarray(at, eol).toString('latin1'), 16);
    if (!size) return Buffer.concat(parts);
    parts.push(wire.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** The run with the median throughput, and what was recorded alongside it. */
function median<T extends { reqPerSec: number }>(list: T[]): T {
  return [...list].sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor(list.length / 2)]!;
}

const kb = (bytes: number) => `${fmt(bytes / 1024, 1)} KB`;
const pct = (part: number, whole: number) => `${fmt((part / whole) * 100, 2)}%`;
const verdict = (met: boolean) => (met ? '**met**' : '**not met**');

async function upstreamCount(upstream: string): Promise<number> {
  const answer = await rawGet(upstream, '/_count');
  return (JSON.parse(answer.body.toString('utf8')) as { feedRequests: number }).feedRequests;
}

/** 1: bytes on the wire for the polls that matter. */
async function wireBytes(upstream: string, sidecar: string): Promise<string> {
  const first = await rawGet(sidecar, feedPath, enhanced);
  const token = first.headers.get('sync-token') ?? '';
  const book = await fetch(`${upstream}/_book`, { method: 'POST' });
  if (book.status !== 204) throw new Error(`booking failed: ${book.status}`);
  const full = await rawGet(sidecar, feedPath);
  const delta = await rawGet(sidecar, feedPath, { ...enhanced, 'sync-token': token });
  const etag = full.headers.get('etag') ?? '';
  const direct = await rawGet(upstream, feedPath);
  const notModified = await rawGet(sidecar, feedPath, { 'if-none-match': etag });
  const deltaToken = delta.headers.get('sync-token') ?? '';
  const enhancedUnchanged = await rawGet(sidecar, feedPath, { ...enhanced, 'sync-token': deltaToken });
  const deltaEvents = delta.body.toString('utf8').split('BEGIN:VEVENT').length - 1;
  if (!token || !etag || delta.status !== 200 || deltaEvents !== 1) {
    throw new Error(`unexpected answers: token ${token}, etag ${etag}, delta ${delta.status} with ${deltaEvents} events`);
  }

  const rows = [
    '| poll | answer | header bytes | body bytes | wire bytes | body × full body | wire × full wire |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  const row = (poll: string, a: RawAnswer, base: RawAnswer) =>
    rows.push(
      `| ${poll} | ${a.status} | ${a.headerBytes} | ${a.bodyBytes} (${kb(a.bodyBytes)}) | ${a.headerBytes + a.bodyBytes} | ${pct(a.bodyBytes, base.bodyBytes)} | ${pct(a.headerBytes + a.bodyBytes, base.headerBytes + base.bodyBytes)} |`,
    );
  row('after one booking: plain GET via icalpush', full, full);
  row('after one booking: enhanced GET with the previous Sync-Token (delta, 1 VEVENT)', delta, full);
  row('unchanged: plain GET direct to the upstream', direct, direct);
  row('unchanged: plain GET via icalpush with If-None-Match', notModified, direct);
  row('unchanged: enhanced GET with the latest Sync-Token', enhancedUnchanged, direct);
  const events = first.body.toString('utf8').split('BEGIN:VEVENT').length - 1;
  rows.push('');
  rows.push(`Feed: ${events} events, ${first.bodyBytes} bytes before the booking, DTSTAMP regenerated on every upstream answer. Goals:`);
  rows.push(`- delta ≤ 2% of the full body: ${pct(delta.bodyBytes, full.bodyBytes)} — ${verdict(delta.bodyBytes <= 0.02 * full.bodyBytes)}`);
  rows.push(
    `- unchanged poll with If-None-Match: ${notModified.status}, body 0, ${notModified.headerBytes} header bytes vs ${direct.headerBytes + direct.bodyBytes} from the upstream (${pct(notModified.headerBytes, direct.headerBytes + direct.bodyBytes)}) — ${verdict(notModified.status === 304 && notModified.bodyBytes === 0)}`,
  );
  return rows.join('\n');
}

/** A load target; `count` reads a counter before and after each run (upstream requests, compressions). */
export type Target = { name: string; url: string; headers?: Record<string, string>; count?: () => Promise<number> };
/** One run and how far the target's counter moved during it. */
export type Run = Throughput & { counted: number };

/** One load run against a URL: autocannon by default. */
export type Load = (url: string, seconds: number, headers?: Record<string, string>) => Promise<Throughput>;

/** Interleaved rounds of every target; the median round of each. */
export async function rounds(
  targets: Target[],
  count: number,
  seconds: number,
  load: Load = autocannon,
): Promise<Map<string, Run>> {
  for (const target of targets) await load(target.url, 1, target.headers);
  const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < count; round++) {
    for (const target of targets) {
      const before = target.count ? await target.count() : 0;
      const result = await load(target.url, seconds, target.headers);
      const after = target.count ? await target.count() : 0;
      runs.get(target.name)!.push({ ...result, counted: after - before });
    }
  }
  return new Map([...runs].map(([name, list]) => [name, median(list)]));
}

/** 2: feed GET throughput, direct and through icalpush. */
async function throughput(upstream: string, sidecar: string, count: number, seconds: number): Promise<string> {
  const etag = (await rawGet(sidecar, feedPath)).headers.get('etag') ?? '';
  const targets: Target[] = [
    { name: 'direct to the upstream', url: `${upstream}${feedPath}` },
    { name: 'icalpush, plain GET', url: `${sidecar}${feedPath}` },
    { name: 'icalpush, If-None-Match (304)', url: `${sidecar}${feedPath}`, headers: { 'if-none-match': etag } },
  ];
  const results = await rounds(targets, count, seconds);
  const direct = results.get(targets[0]!.name)!;
  const rows = [
    `| path | req/s (50 conns, median of ${count} × ${seconds} s) | p50 ms | p99 ms | statuses | × direct |`,
    '|---|---:|---:|---:|---|---:|',
  ];
  for (const target of targets) {
    const r = results.get(target.name)!;
    rows.push(
      `| ${target.name} | ${fmt(r.reqPerSec)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${r.statuses}${r.errors ? `, ${r.errors} errors` : ''} | ${fmt(r.reqPerSec / direct.reqPerSec, 2)} |`,
    );
  }
  const plain = results.get(targets[1]!.name)!.reqPerSec / direct.reqPerSec;
  rows.push('');
  rows.push(`Goal: icalpush plain GET ≥ 0.8× direct: ${fmt(plain, 2)}× — ${verdict(plain >= 0.8)}`);
  return rows.join('\n');
}

/** 3: concurrent GETs of one URL share one upstream fetch, against slow upstreams. */
async function sharedFetches(
  slow: { name: string; upstream: string; sidecar: string }[],
  count: number,
  seconds: number,
): Promise<string> {
  const targets: Target[] = slow.flatMap((s) => [
    { name: `direct, ${s.name}`, url: `${s.upstream}${feedPath}`, count: () => upstreamCount(s.upstream) },
    { name: `icalpush, ${s.name}`, url: `${s.sidecar}${feedPath}`, count: () => upstreamCount(s.upstream) },
  ]);
  const results = await rounds(targets, count, seconds);
  const rows = [
    `| path | client req/s (50 conns, median of ${count} × ${seconds} s) | p50 ms | p99 ms | upstream requests | client requests per upstream request | × direct req/s |`,
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const lines: string[] = [];
  for (const s of slow) {
    const direct = results.get(`direct, ${s.name}`)!;
    for (const name of [`direct, ${s.name}`, `icalpush, ${s.name}`]) {
      const r = results.get(name)!;
      const served = r.reqPerSec * seconds;
      rows.push(
        `| ${name} | ${fmt(r.reqPerSec)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${r.counted} | ${fmt(served / Math.max(1, r.counted), 1)} | ${fmt(r.reqPerSec / direct.reqPerSec, 2)} |${r.errors ? ` ${r.errors} errors` : ''}`,
      );
    }
    const ratio = results.get(`icalpush, ${s.name}`)!.reqPerSec / direct.reqPerSec;
    lines.push(`- ${s.name}: icalpush ${fmt(ratio, 2)}× direct — ${verdict(ratio > 1)}`);
  }
  rows.push('');
  rows.push('Goal: icalpush beats direct (req/s > 1× direct), because concurrent GETs share one upstream fetch:');
  return [...rows, ...lines].join('\n');
}

type Reread = {
  feedBytes: number;
  events: number;
  result: Record<string, { cpuMs: number; changed: boolean; split: boolean }>;
};
type RereadMemory = {
  feedBytes: number;
  result: Record<string, { allocatedBytes: number; liveBytes: number; gcInside: number }>;
};

async function child<T>(args: string[]): Promise<T> {
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}`);
  return JSON.parse(out) as T;
}

/** 4: the in-process re-read and diff of a 10,000-event feed. */
async function reread(): Promise<string> {
  const script = 'bench/fixtures/feed-reread.ts';
  const cpu = await child<Reread>(['--expose-gc', script, 'cpu', '10000']);
  // A young generation big enough that no GC runs inside one read: heap growth is then every byte
  // the read allocated (the child checks that no GC ran).
  const memory = await child<RereadMemory>(['--expose-gc', '--max-semi-space-size=256', script, 'memory', '10000']);
  const feed = cpu.feedBytes;
  const rows = [
    `| re-read of a ${cpu.events}-event feed (${kb(feed)}) | work done | CPU ms (median of 5) | heap allocated during the read | × feed bytes | heap live when it returns | × feed bytes |`,
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  const lines: string[] = [];
  for (const [name, r] of Object.entries(cpu.result)) {
    const m = memory.result[name]!;
    const work = r.split ? `fingerprint + split + diff${r.changed ? ', new version' : ', no new version'}` : 'fingerprint only';
    const gcNote = m.gcInside ? ` (${m.gcInside} GCs ran inside: a lower bound)` : '';
    rows.push(
      `| ${name} | ${work} | ${fmt(r.cpuMs, 1)} | ${kb(m.allocatedBytes)}${gcNote} | ${fmt(m.allocatedBytes / feed, 1)} | ${kb(Math.max(0, m.liveBytes))} | ${fmt(Math.max(0, m.liveBytes) / feed, 1)} |`,
    );
    // Peak growth lies between what is live at the end and everything allocated.
    const live = Math.max(0, m.liveBytes) / feed;
    const allocated = m.allocatedBytes / feed;
    const memoryVerdict = allocated <= 3 && !m.gcInside
      ? '**met**'
      : live > 3 ? '**not met**' : `between ${fmt(live, 1)}× and ${fmt(allocated, 1)}×: not shown met`;
    lines.push(`- ${name}: CPU ${fmt(r.cpuMs, 1)} ms — ${verdict(r.cpuMs <= 20)}; peak heap growth ≤ 3× feed bytes — ${memoryVerdict}`);
  }
  rows.push('');
  rows.push(
    'Per read, on one thread: `fingerprint(body)`; when it differs from the history\'s, the worker\'s analysis (`packReusing`, reusing the previous read\'s blocks) + `applyAnalysis` + `pruneTombstones`; only the fingerprint and the folding run on the event loop. Peak heap growth lies between "live when it returns" (the new history and this read\'s blocks, as the worker keeps them) and "allocated" (no GC ran). Goals (≤ 20 ms CPU, peak heap growth ≤ 3× feed bytes):',
  );
  return [...rows, ...lines].join('\n');
}

/** Runs the feeds benchmark and returns its tables as text. */
export async function main(): Promise<string> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const count = Number(process.env.BENCH_ROUNDS ?? 3);
  const children: ChildProcess[] = [];
  try {
    const start = async (args: string[]) => `http://127.0.0.1:${await startProcess(args, children)}`;
    const upstream = await start(['bench/fixtures/feed-upstream.ts', '--events', '1000']);
    const sidecar = await start(['bench/fixtures/icalpush-app.ts', upstream]);
    const parallel = await start(['bench/fixtures/feed-upstream.ts', '--delay-ms', '50']);
    const pooled = await start(['bench/fixtures/feed-upstream.ts', '--delay-ms', '50', '--workers', '4']);
    const slow = [
      { name: 'upstream 50 ms, unlimited concurrency', upstream: parallel, sidecar: await start(['bench/fixtures/icalpush-app.ts', parallel]) },
      { name: 'upstream 50 ms, 4 workers', upstream: pooled, sidecar: await start(['bench/fixtures/icalpush-app.ts', pooled]) },
    ];
    const sections = [
      `### 1. Bytes on the wire per poll\n\n${await wireBytes(upstream, sidecar)}`,
      `### 2. Feed GET throughput\n\n${await throughput(upstream, sidecar, count, seconds)}`,
      `### 3. Shared upstream fetches\n\n${await sharedFetches(slow, count, Math.max(1, Math.round(seconds * 0.6)))}`,
    ];
    for (const c of children) c.kill('SIGTERM');
    sections.push(`### 4. Re-read and diff, in-process\n\n${await reread()}`);
    return sections.join('\n\n');
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
