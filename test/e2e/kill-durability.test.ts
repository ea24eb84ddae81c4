// kill -9 durability (SPEC "Outbound": a pending notification survives a crash at any instant, write-ahead;
// SPEC "Guarantees"): real `icalpush serve` processes, each on an sqlite store of its own, are killed with
// SIGKILL at a random instant of a booking's life and restarted on the same store; every booking must still
// reach the listing's peer as an iPP HEAD. Independent lanes run side by side. The draws come from a seeded
// PRNG: the seed is printed, and KILL_SEED=n replays the same draws (the machine's timing still varies).
// Where each kill landed is read from a copy of the store. Some windows between two writes of one tick are
// too narrow for random kills: crash-at-every-write.test.ts crashes at each write boundary instead.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { changeLogNamespace, type FeedChange } from '../../src/feeds/change-log.ts';
import { createHistoryStore } from '../../src/feeds/history-store.ts';
import { createLogger } from '../../src/log.ts';
import { freePort } from '../../src/demo/mesh.ts';
import { outboxNamespace } from '../../src/push/notifier.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { startServer } from '../helpers/servers.ts';
import { dayFromNow, type Stay, staysCalendar } from '../helpers/calendars.ts';

const lanes = 3;
const cyclesPerLane = 11;
// The kill lands this long after the read that sees the booking was sent.
const killMs = { min: 0, max: 150 };
// The peer's feed answers this slowly: classification re-reads a peer it has not read lately, so the span
// between "snapshot written" and "outbox written" is this wide. Below and above the kill range, so kills
// land before, during and after that span.
const peerGetMs = { min: 0, max: 200 };
// The peer answers a HEAD this slowly (it is counted on arrival): a kill can land while a HEAD is in flight.
const peerHeadMs = { min: 0, max: 100 };
const headTimeoutMs = 20_000;

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainPath = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const seed = process.env.KILL_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.KILL_SEED);

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(start: number): () => number {
  let a = start >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// Fixed for the whole run, so a run crossing midnight keeps its dates.
const today = Date.now();
const day = (offset: number) => dayFromNow(offset, today);

/** Where the durable state stood when a sidecar was killed, read from a copy of its store. */
type Phase =
  /** Nothing of the booking in the store: killed before (or while) it was read and analysed. */
  | 'before-journal'
  /** The change is journaled, the snapshot still the old one. */
  | 'journaled'
  /** Journal and snapshot hold the change, the outbox not yet: classification under way. */
  | 'snapshotted'
  /** The notification is in the outbox and the change still in the journal. */
  | 'queued'
  /** The change is done, the notification waits in the outbox or its HEAD is in flight. */
  | 'sending'
  /** All done: the peer got its HEAD before the kill. */
  | 'delivered';

type Durable = { journal: FeedChange[]; outbox: number; historyVersion: number | undefined };

type Sidecar = {
  child: ChildProcess;
  url: string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** The last of what the process wrote, for failure messages. */
  output(): string;
};

type StatusJson = {
  listings: Record<string, { version?: number }>;
  push: Record<string, { pending: unknown[] }>;
};

type CycleReport = { lane: number; cycle: number; phase: Phase; get: string; heads: number };

const children = new Set<ChildProcess>();

test('every booking reaches the peer although the sidecar is killed with SIGKILL at random instants',
  { timeout: 240_000 }, async (t) => {
    t.diagnostic(`KILL_SEED=${seed}`);
    t.after(() => {
      for (const child of children) child.kill('SIGKILL');
    });
    const startedAt = performance.now();
    const reports: CycleReport[] = [];
    const results = await Promise.allSettled(Array.from({ length: lanes }, (_, lane) => runLane(t, lane, reports)));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    const phases = new Map<Phase, number>();
    for (const report of reports) phases.set(report.phase, (phases.get(report.phase) ?? 0) + 1);
    const answered = reports.filter((r) => r.get.startsWith('status')).length;
    t.diagnostic(`kills: ${reports.length} in ${Math.round(performance.now() - startedAt)} ms; phases at the kill: ${
      JSON.stringify(Object.fromEntries(phases))}; reads answered before the kill: ${answered}; HEADs per booking: ${
      JSON.stringify(Object.fromEntries(countBy(reports.map((r) => r.heads))))}`);
    if (failures.length > 0) {
      assert.fail(`KILL_SEED=${seed}: ${failures.length} lane(s) failed:\n${failures.map((e) => e.stack ?? e.message)
        .join('\n\n')}`);
    }
    assert.equal(reports.length, lanes * cyclesPerLane);
  });

/** Runs one lane's cycles; each finished cycle is added to `reports`. */
async function runLane(t: TestContext, lane: number, reports: CycleReport[]): Promise<void> {
  const random = prng(seed ^ Math.imul(lane + 1, 0x9e3779b1));
  const draw = (range: { min: number; max: number }) => range.min + Math.floor(random() * (range.max - range.min + 1));
  const listing = `kd-${lane}`;
  const dir = await mkdtemp(join(tmpdir(), `icalpush-kill-${lane}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storePath = join(dir, 'icalpush.db');
  const configPath = join(dir, 'proxy.yaml');
  const feedKey = `/calendar/${listing}.ics`;

  // A past stay whose summary changes at the start of each cycle: that read is analysed, so the booking's
  // read finds the worker thread started (a kill then lands in the booking's own phases, not in the
  // worker's start), and it changes no night, so it reads no peer.
  const past: Stay = { uid: `${listing}-past@test`, start: day(-400), end: day(-397), summary: 'Past stay' };
  const stays: Stay[] = [
    past,
    { uid: `${listing}-a@test`, start: day(35), end: day(37) },
    { uid: `${listing}-b@test`, start: day(38), end: day(41) },
  ];
  const upstreamFeed = { text: staysCalendar(stays) };
  const upstream = await startServer(t, (req, res) => {
    if (req.url?.split('?')[0] === feedKey) {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(upstreamFeed.text);
      return;
    }
    res.writeHead(404).end();
  });

  // The peer's calendar for the listing: one stay of its own, never the bookings made here.
  const peerText = staysCalendar([{ uid: `${listing}-peer@test`, start: day(32), end: day(34) }]);
  const peerTiming = { getMs: 0, headMs: 0 };
  const heads: Array<{ at: number; userAgent: string }> = [];
  const headed = new EventEmitter();
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push({ at: performance.now(), userAgent: String(req.headers['user-agent'] ?? '') });
      headed.emit('head');
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(), peerTiming.headMs);
      return;
    }
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(peerText),
      peerTiming.getMs);
  });

  async function start(): Promise<Sidecar> {
    const port = await freePort();
    const config = {
      listen: `127.0.0.1:${port}`,
      upstream: upstream.url,
      store: storePath,
      feeds: [{ path: '/calendar/{listing}.ics' }],
      listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${listing}.ics`, notify: true }] } },
      push: { watch: '1s' },
      hooks: { enabled: false },
      log: { level: 'info' },
    };
    // JSON is YAML.
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const child = spawn(process.execPath, [mainPath, 'serve', '--config', configPath], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '' },
    });
    children.add(child);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    void exited.then(() => children.delete(child));
    let out = '';
    const keep = (d: string) => {
      out = (out + d).slice(-8_000);
    };
    child.stdout?.setEncoding('utf8').on('data', keep);
    child.stderr?.setEncoding('utf8').on('data', keep);
    const sidecar: Sidecar = { child, url: `http://127.0.0.1:${port}`, exited, output: () => out };
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    await until(async () => {
      if (gone) throw new Error(`sidecar exited before it was ready:\n${out}`);
      return (await answer(`${sidecar.url}/_icalpush/readyz`)) === 200;
    }, 15_000, () => `lane ${lane}: sidecar not ready:\n${out}`);
    return sidecar;
  }

  async function stop(sidecar: Sidecar): Promise<void> {
    sidecar.child.kill('SIGTERM');
    const late = new AbortController();
    const outcome = await Promise.race([sidecar.exited, sleep(15_000, 'late' as const, { signal: late.signal })]);
    late.abort();
    if (outcome === 'late') {
      sidecar.child.kill('SIGKILL');
      assert.fail(`lane ${lane}: no exit within 15 s of SIGTERM:\n${sidecar.output()}`);
    }
    const [code, signal] = outcome;
    assert.equal(code, 0, `lane ${lane}: graceful stop ended with ${code ?? signal}:\n${sidecar.output()}`);
  }

  async function status(sidecar: Sidecar): Promise<StatusJson> {
    const res = await request(`${sidecar.url}/_icalpush/status`);
    assert.equal(res.statusCode, 200);
    return await res.body.json() as StatusJson;
  }

  /** Change classifications the process made so far, every kind. */
  async function classifications(sidecar: Sidecar): Promise<number> {
    const text = await (await request(`${sidecar.url}/_icalpush/metrics`)).body.text();
    return [...text.matchAll(/^icalpush_push_changes_total\{kind="[^"]*"\} (\d+)$/gm)]
      .reduce((sum, match) => sum + Number(match[1]), 0);
  }

  /** Reads `store` (a stopped sidecar's file, or a copy of a killed one's). */
  async function durableOf(path: string): Promise<Durable> {
    const store = await openStore(path);
    try {
      const history = await createHistoryStore(store, createLogger({ level: 'silent' })).load(feedKey);
      return {
        journal: await entries<FeedChange>(store, changeLogNamespace),
        outbox: (await entries(store, outboxNamespace)).length,
        historyVersion: history?.version,
      };
    } finally {
      await store.close();
    }
  }

  /** The killed sidecar's store as it was left, read from a copy so the next sidecar recovers it itself. */
  async function durableAfterKill(): Promise<Durable> {
    const copyDir = await mkdtemp(join(dir, 'inspect-'));
    try {
      const copy = join(copyDir, 'icalpush.db');
      await copyFile(storePath, copy);
      await copyFile(`${storePath}-wal`, `${copy}-wal`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return await durableOf(copy);
    } finally {
      await rm(copyDir, { recursive: true, force: true });
    }
  }

  /** Resolves with the first HEAD the peer got after `after`; rejects naming `where()` after `ms`. */
  function headAfter(after: number, ms: number, where: () => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        headed.off('head', check);
        reject(new Error(`no HEAD reached the peer within ${ms} ms: ${where()}`));
      }, ms);
      function check() {
        if (!heads.some((head) => head.at > after)) return;
        clearTimeout(timer);
        headed.off('head', check);
        resolve();
      }
      headed.on('head', check);
      check();
    });
  }

  let version: number | undefined;
  for (let cycle = 1; cycle <= cyclesPerLane; cycle += 1) {
    const timing = { killMs: draw(killMs), peerGetMs: draw(peerGetMs), peerHeadMs: draw(peerHeadMs) };
    peerTiming.getMs = timing.peerGetMs;
    peerTiming.headMs = timing.peerHeadMs;
    // What a failure message names: the draws, the phase of the kill, the last sidecar's output.
    const seen: { phase?: Phase | 'lost'; sidecar?: Sidecar } = {};
    const where = () => `KILL_SEED=${seed} lane ${lane} cycle ${cycle} ${JSON.stringify(timing)} phase ${
      seen.phase}\nsidecar output:\n${seen.sidecar?.output() ?? ''}`;

    // A fresh sidecar (no peer read yet, so classifying the booking reads the slow peer) that has read
    // the feed as it stands.
    const first = await start();
    seen.sidecar = first;
    past.summary = `Past stay, cycle ${cycle}`;
    upstreamFeed.text = staysCalendar(stays);
    const before = await answer(`${first.url}${feedKey}`);
    assert.equal(before, 200, where());
    const from = (await status(first)).listings[listing]?.version;
    assert.ok(from !== undefined, where());
    // The past stay's new summary is one new version.
    if (version !== undefined) assert.equal(from, version + 1, where());

    // The booking: new nights of their own, so the HEADs after it are this booking's.
    const offset = 45 + cycle * 3;
    stays.push({ uid: `${listing}-booking-${cycle}@test`, start: day(offset), end: day(offset + 2) });
    upstreamFeed.text = staysCalendar(stays);
    const bookedAt = performance.now();
    const read = answer(`${first.url}${feedKey}`).then((code) => `status ${code}`, () => 'cut by the kill');
    await sleep(timing.killMs);
    first.child.kill('SIGKILL');
    const [, signal] = await first.exited;
    assert.equal(signal, 'SIGKILL', where());
    const got = await read;
    // Only the kill may cut the read; an answer it gave is never a 5xx.
    assert.doesNotMatch(got, /^status 5/, where());

    const durable = await durableAfterKill();
    const current = durable.journal.filter((change) => change.version === from + 1);
    // Every earlier change was processed (and the stop before this start was graceful).
    assert.equal(current.length, durable.journal.length, `${where()}\njournal: ${JSON.stringify(durable.journal)}`);
    const phase = phaseOf(durable, from, current.length > 0, heads.some((head) => head.at > bookedAt));
    seen.phase = phase;
    if (phase === 'lost') assert.fail(`${where()}\nthe change is done and out of the outbox, but the peer got no HEAD`);

    const second = await start();
    seen.sidecar = second;
    await headAfter(bookedAt, headTimeoutMs, where);
    // Settled: the booking is in the snapshot, each change the new process had to classify is classified, and
    // nothing is waiting to be sent. With its snapshot, a journaled change is classified again; without, it is
    // dropped at start and left to the next read, which classifies the booking once.
    const expected = durable.historyVersion === from + 1 ? current.length : 1;
    await until(async () => {
      const now = await status(second);
      return now.listings[listing]?.version === from + 1 && now.push[listing]?.pending.length === 0
        && await classifications(second) >= expected;
    }, 10_000, where);
    await stop(second);
    const left = await durableOf(storePath);
    assert.deepEqual(left.journal, [], `${where()}: the feed_changes journal is not empty after a graceful stop`);
    assert.equal(left.outbox, 0, `${where()}: the outbox is not empty after a graceful stop`);
    version = from + 1;

    const sent = heads.filter((head) => head.at > bookedAt);
    for (const head of sent) assert.match(head.userAgent, /^iPP\/0\.1 icalpush\//, where());
    reports.push({ lane, cycle, phase, get: got, heads: sent.length });
  }
}

/** Where the durable state stood at the kill; 'lost' when the change is done but no HEAD reached the peer. */
function phaseOf(durable: Durable, from: number, journaled: boolean, headed: boolean): Phase | 'lost' {
  const applied = durable.historyVersion === from + 1;
  if (journaled) {
    if (durable.outbox > 0) return 'queued';
    return applied ? 'snapshotted' : 'journaled';
  }
  if (!applied) return 'before-journal';
  if (durable.outbox > 0) return 'sending';
  return headed ? 'delivered' : 'lost';
}

async function entries<T>(store: Store, namespace: string): Promise<T[]> {
  const out: T[] = [];
  for await (const [, value] of store.namespace(namespace).entries<T>()) out.push(value);
  return out;
}

/** The status code of a GET of `url` (body drained); rejects on a connection error. */
async function answer(url: string): Promise<number> {
  const res = await request(url);
  await res.body.dump();
  return res.statusCode;
}

/** Resolves once `check` holds, trying every 20 ms (a refused connection counts as not yet); rejects after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, where: () => string): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ECONNREFUSED') throw err;
    }
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${where()}`);
    await sleep(20);
  }
}

function countBy(values: number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const value of values.sort((a, b) => a - b)) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}
