// Hostile-feed benchmark: what a hostile feed (endless or huge recurrences, 100,000 events, 12 MB, deep
// nesting, a body that trickles forever) costs the sidecar while it reads it, as the listing's own feed
// (a GET through the sidecar) and as a peer's feed (an inbound HEAD makes the sidecar read it): the
// longest event-loop stall, the HEAD latency of another feed meanwhile, peak RSS growth per feed byte,
// how long the read took and what came of it. With BENCH_BEFORE=<checkout of an older commit, with
// node_modules>, the same scenarios run against that checkout's app too, side by side. The upstream,
// each sidecar and the HEAD load run in their own processes; every scenario gets a fresh sidecar.
// BENCH_CAP_S bounds each scenario (90 s), BENCH_KINDS picks kinds (names or slugs, comma-separated),
// BENCH_SIDECAR_ARGS adds node flags to the sidecars (e.g. `--cpu-prof --cpu-prof-dir=.scratch/prof`).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { hostileKinds, type HostileKind } from './fixtures/hostile-feeds.ts';
import { fmt, startProcess } from './passthrough.ts';
import { feedAnswerTimes } from './push.ts';

const root = new URL('..', import.meta.url).pathname;
const node = process.execPath;
// HEADs per second on the quiet feed while a hostile read runs, for at least this long.
const headRate = 200;
const minLoadMs = 2_000;
// After a read ends, the load and the probes run this much longer: the push decision follows the answer.
const settleMs = 500;
const upstreamTimeout = '5s';
const verdict = (met: boolean) => (met ? '**met**' : '**not met**');
const mb = (bytes: number) => `${fmt(bytes / (1024 * 1024), 1)} MB`;
const seconds = (ms: number) => (ms < 1000 ? `${fmt(ms)} ms` : `${fmt(ms / 1000, 2)} s`);
// The calibration row: no hostile read at all, only the HEAD load, for what the probes read on their own.
const control: HostileKind = { name: 'none (HEAD load only)', slug: 'none', what: 'no read: what the probes show without one' };
const sidecarFlags = (process.env.BENCH_SIDECAR_ARGS ?? '').split(' ').filter(Boolean);

type Side = { name: 'before' | 'after'; root: string; commit: string };
type Role = 'own' | 'peer';
type Message = Record<string, unknown>;

/** A child process spoken to over IPC; heartbeats are kept apart from the other messages. */
type IpcChild = {
  child: ChildProcess;
  /** performance.now() of this process when the last heartbeat arrived. */
  lastBeat: number;
  messages: Message[];
  send(message: Message): void;
  /** The first message from index `from` on that passes `test`, waiting until `deadline` (performance.now()). */
  wait(test: (m: Message) => boolean, deadline: number, from?: number): Promise<Message | undefined>;
  /** SIGTERM (a profile gets written), SIGKILL after `graceMs`. */
  kill(graceMs?: number): Promise<void>;
};

function spawnIpc(args: string[]): IpcChild {
  const child = spawn(node, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  const ipc: IpcChild = {
    child,
    lastBeat: performance.now(),
    messages: [],
    send: (message) => {
      if (child.connected) child.send(message);
    },
    async wait(test, deadline, from = 0) {
      for (;;) {
        const found = ipc.messages.slice(from).find(test);
        if (found) return found;
        const left = deadline - performance.now();
        if (child.exitCode !== null || child.signalCode !== null || left <= 0) return undefined;
        await new Promise<void>((done) => {
          const finish = () => {
            waiters.delete(finish);
            clearTimeout(timer);
            done();
          };
          const timer = setTimeout(finish, left);
          waiters.add(finish);
        });
      }
    },
    async kill(graceMs = 0) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      if (graceMs > 0) {
        child.kill('SIGTERM');
        if (await within(exited.then(() => true), graceMs)) return;
      }
      child.kill('SIGKILL');
      await exited;
    },
  };
  child.on('message', (message: Message) => {
    if (typeof message.beat === 'number') ipc.lastBeat = performance.now();
    else ipc.messages.push({ ...message, receivedAt: performance.now() });
    wake();
  });
  child.on('exit', wake);
  return ipc;
}

/** Resolves with `work`'s value, or undefined once `ms` passed or it failed. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  const timeout = new AbortController();
  const late = sleep(ms, undefined, { signal: timeout.signal }).catch(() => undefined);
  const result = await Promise.race([work.catch(() => undefined), late]);
  timeout.abort();
  return result;
}

/** The config each side runs with; the before side gets only keys its schema knows (d678116's). */
function configFor(side: Side, upstream: string, listing: string, peerUrl: string): Record<string, unknown> {
  const config = {
    listen: '127.0.0.1:0',
    upstream,
    store: 'memory',
    feeds: [{ path: '/calendar/{listing}.ics' }],
    listings: { [listing]: { peers: [{ name: 'peer', url: peerUrl }] } },
    // Each inbound HEAD reads; no watch reads in the middle of a measurement.
    push: { debounce: '10ms', watch: 0 } as Record<string, unknown>,
    refresh: { url: `${upstream}/refresh/{listing}` },
    // Above the 100,000-event feed (≈30 MB): at the default 20 MiB it would be refused before any parse.
    snapshots: { maxBodyBytes: '64MiB' } as Record<string, unknown>,
    timeouts: { upstream: upstreamTimeout },
  };
  if (side.name === 'after') {
    // The keys added since, at their defaults, so the tables say what ran.
    config.snapshots.maxEntitiesPerFeed = 25_000;
    config.snapshots.maxVariantsPerPath = 16;
    config.push.retryFor = '24h';
  }
  return config;
}

type Load = {
  sent: number;
  answered: number;
  statuses: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
};

/** What one kind × role × side came to. */
type Outcome = {
  /** Longest event-loop delay in the sidecar, ms; `atLeast` when the probe never answered. */
  stallMs: number;
  stallAtLeast: boolean;
  /** The longest gap between the sidecar's 10 ms ticks, and the CPU time its main thread spent in it. */
  gap: { ms: number; cpuMs: number; queuedMs: number } | undefined;
  load: Load | undefined;
  /** The sidecar's own count of HEAD answers during the read and of those within 5 ms. */
  sidecarHeads: { count: number; within5ms: number } | undefined;
  rssGrowthBytes: number | undefined;
  /** Of it, the peak growth of the main thread's heap and external memory (the rest: worker threads). */
  mainGrowthBytes: number | undefined;
  feedBytes: number;
  /** ms; undefined when the cap came first. */
  readMs: number | undefined;
  /** The trickle: how long the upstream's connection stayed open. */
  cutMs?: number;
  /** What the client got, and whether the sidecar answered its health check afterwards. */
  answer: string;
};

/** A GET that gives up after `ms`: status, headers and body, or undefined. */
async function get(url: string, ms: number, headers: Record<string, string> = {}) {
  try {
    const res = await request(url, { headers, headersTimeout: ms, bodyTimeout: ms, signal: AbortSignal.timeout(ms) });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  } catch {
    return undefined;
  }
}

async function sidecarStatus(url: string): Promise<Record<string, unknown> | undefined> {
  const answer = await get(`${url}/_icalpush/status`, 2_000);
  return answer?.status === 200 ? (JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>) : undefined;
}

/** How the sidecar's status describes the own feed, e.g. `unversioned: too-many-entities`. */
function feedNote(status: Record<string, unknown> | undefined, target: string): string {
  const feeds = (status?.feeds ?? []) as { feed?: string; version?: number; entities?: number; unversioned?: string;
    lastError?: { reason: string }; }[];
  const feed = feeds.find((f) => f.feed === target);
  if (!feed) return '';
  const parts = [feed.version !== undefined ? `v${feed.version}` : `unversioned: ${feed.unversioned ?? '?'}`,
    `${feed.entities ?? '?'} entities`];
  if (feed.lastError) parts.push(`last error ${feed.lastError.reason}`);
  return ` (${parts.join(', ')})`;
}

function peerNote(status: Record<string, unknown> | undefined, listing: string): string {
  type PeerStatus = { busyNights?: number; lastError?: { reason: string } };
  const push = (status?.push ?? {}) as Record<string, { peers?: PeerStatus[] }>;
  const peer = push[listing]?.peers?.[0];
  if (!peer) return '';
  if (peer.lastError) return `read failed: ${peer.lastError.reason}`;
  return peer.busyNights === undefined ? 'not read' : `read, ${peer.busyNights} busy nights`;
}

async function trickleRecords(upstream: string): Promise<{ path: string; openMs: number | null; bytes: number }[]> {
  const answer = await get(`${upstream}/_trickles`, 2_000);
  return answer ? (JSON.parse(answer.body.toString('utf8')) as { path: string; openMs: number | null; bytes: number }[]) : [];
}

/** One kind read in one role by one side's sidecar, under HEAD load; bounded by `capMs`. */
async function scenario(side: Side, kind: HostileKind, role: Role, upstream: string, feedBytes: number,
  capMs: number): Promise<Outcome> {
  const listing = role === 'own' ? kind.slug : 'home';
  const peerUrl = `${upstream}/peer/${role === 'own' ? 'tiny' : kind.slug}.ics`;
  const ownPath = `/calendar/${listing}.ics`;
  const config = configFor(side, upstream, listing, peerUrl);
  const sidecar = spawnIpc([...sidecarFlags, 'bench/fixtures/hostile-app.ts', side.root, JSON.stringify(config)]);
  let load: IpcChild | undefined;
  try {
    const started = await sidecar.wait((m) => typeof m.port === 'number', performance.now() + 30_000);
    if (!started) throw new Error(`${side.name} sidecar did not start`);
    const url = `http://127.0.0.1:${started.port as number}`;
    // The HEADs' feed has a snapshot (a feed of no listing: its HEADs cause no push work), and in the peer
    // role so has the listing's own feed (its HEAD is then answered from it).
    await get(`${url}/calendar/quiet.ics`, 10_000);
    if (role === 'peer') await get(`${url}${ownPath}`, 10_000);
    const tricklesBefore = kind.slug === 'trickle' ? (await trickleRecords(upstream)).length : 0;
    load = spawnIpc(['bench/fixtures/head-load.ts', `${url}/calendar/quiet.ics`, String(headRate)]);
    if (!(await load.wait((m) => m.ready === true, performance.now() + 10_000))) throw new Error('HEAD load did not start');
    await sleep(500);
    const timesBefore = await feedAnswerTimes(url);
    let from = sidecar.messages.length;
    sidecar.send({ cmd: 'start' });
    await sidecar.wait((m) => m.cmd === 'started', performance.now() + 5_000, from);
    load.send({ cmd: 'mark' });

    const t0 = performance.now();
    const deadline = t0 + capMs;
    let readMs: number | undefined;
    let answer: string;
    const eventsFrom = sidecar.messages.length;
    if (kind === control) {
      answer = 'no read';
    } else if (role === 'own') {
      const got = await get(`${url}${ownPath}`, capMs, { prefer: 'subscribe-enhanced-get' });
      if (got) {
        readMs = performance.now() - t0;
        const tokens = [got.headers.etag ? 'ETag' : '', got.headers['sync-token'] ? 'Sync-Token' : ''].filter(Boolean);
        answer = `${got.status}, ${tokens.length ? tokens.join(' + ') : 'no ETag'}`;
      } else {
        answer = 'no answer';
      }
    } else {
      const headed = await within(request(`${url}${ownPath}`, { method: 'HEAD' }).then(async (res) => {
        await res.body.dump();
        return `HEAD ${res.statusCode}${res.headers.etag ? ' + ETag' : ''}`;
      }), 10_000);
      const done = await sidecar.wait((m) => String(m.event).startsWith('inbound notification'), deadline, eventsFrom);
      if (done) readMs = performance.now() - t0;
      answer = headed ?? 'HEAD: no answer';
    }
    const readEnd = performance.now();
    // The load runs on while the sidecar's loop is stuck (it answers a ping once free), at most to the cap.
    from = sidecar.messages.length;
    sidecar.send({ cmd: 'ping' });
    const stalled = !(await sidecar.wait((m) => m.cmd === 'pong', Math.max(deadline, performance.now() + 2_000), from));
    const windowEnd = Math.max(t0 + minLoadMs, readEnd + settleMs);
    if (!stalled && windowEnd > performance.now()) await sleep(windowEnd - performance.now());
    from = load.messages.length;
    load.send({ cmd: 'stop' });
    const loadResult = (await load.wait((m) => typeof m.sent === 'number', performance.now() + 10_000, from)) as Load | undefined;

    from = sidecar.messages.length;
    if (!stalled) sidecar.send({ cmd: 'report' });
    const probe = stalled ? undefined : await sidecar.wait((m) => m.cmd === 'report', performance.now() + 5_000, from);
    // A stuck loop answers nothing: it has been stuck since its last heartbeat.
    const stallMs = probe ? (probe.stallMaxMs as number) : performance.now() - sidecar.lastBeat;
    const timesAfter = probe ? await within(feedAnswerTimes(url), 2_000) : undefined;
    const status = probe ? await sidecarStatus(url) : undefined;
    const health = probe ? await get(`${url}/_icalpush/healthz`, 2_000) : undefined;
    // The hostile GET is a feed answer too: only the HEADs are counted (the GET by the time its client saw).
    let sidecarHeads: Outcome['sidecarHeads'];
    if (timesBefore && timesAfter) {
      const ownGet = role === 'own' && readMs !== undefined;
      const count = timesAfter.count - timesBefore.count - (ownGet ? 1 : 0);
      const within5ms = timesAfter.within5ms - timesBefore.within5ms - (ownGet && (readMs ?? 0) <= 5 ? 1 : 0);
      sidecarHeads = { count, within5ms: Math.min(count, within5ms) };
    }
    const events = sidecar.messages.slice(eventsFrom).filter((m) => typeof m.event === 'string');
    if (kind === control) {
      // Nothing read: only whether the sidecar is still up.
    } else if (role === 'own') {
      answer += feedNote(status, ownPath);
      const classified = events.find((m) => m.event === 'listing change classified');
      if (classified) answer += `; push: ${String(classified.kind)} at ${seconds((classified.receivedAt as number) - t0)}`;
    } else {
      const failed = events.find((m) => m.event === 'peer read failed');
      const note = failed ? `read failed: ${String(failed.reason)}`
        : readMs === undefined ? 'read not finished' : peerNote(status, listing);
      answer += `; peer ${note || 'read'}`;
      const refresh = events.find((m) => String(m.event).startsWith('inbound notification'));
      if (refresh) answer += refresh.refresh ? `; refresh ${String(refresh.refresh)}` : '; no refresh';
    }
    answer += health?.status === 200 ? '; healthz 200' : probe ? `; healthz ${health?.status ?? 'no answer'}` : '; sidecar stuck, killed';
    const outcome: Outcome = {
      stallMs,
      stallAtLeast: !probe,
      gap: probe ? { ms: probe.gapMs as number, cpuMs: probe.gapCpuMs as number, queuedMs: probe.gapQueuedMs as number }
        : undefined,
      load: loadResult,
      sidecarHeads,
      rssGrowthBytes: probe ? (probe.rssPeak as number) - (probe.rssBefore as number) : undefined,
      mainGrowthBytes: probe ? (probe.mainGrowth as number) : undefined,
      feedBytes,
      readMs,
      answer,
    };
    if (kind.slug === 'trickle') {
      await sidecar.kill();
      await sleep(100);
      const record = (await trickleRecords(upstream)).slice(tricklesBefore).find((t) => t.path.includes('trickle'));
      if (record && record.openMs !== null && readMs !== undefined) outcome.cutMs = record.openMs;
    }
    return outcome;
  } finally {
    await load?.kill();
    await sidecar.kill(sidecarFlags.length > 0 ? 5_000 : 0);
  }
}

function cells(o: Outcome | undefined, capMs: number): string[] {
  if (!o) return ['-', '-', '-', '-', '-', '-'];
  const stall = o.stallAtLeast ? `≥ ${fmt(o.stallMs)} (stuck)`
    : `${fmt(o.stallMs, 1)}${o.gap ? ` (${fmt(o.gap.ms)}: ${fmt(o.gap.cpuMs)} CPU, ${fmt(o.gap.queuedMs)} queued)` : ''}`;
  const latency = (ms: number | null) => (ms === null ? 'no answer' : fmt(ms, 1));
  const head = o.load
    ? `${latency(o.load.p50Ms)} / ${latency(o.load.p99Ms)} / ${latency(o.load.maxMs)}${
      o.load.answered < o.load.sent ? ` (${o.load.sent - o.load.answered} of ${o.load.sent} unanswered)` : ''}`
    : '-';
  const share = o.sidecarHeads && o.sidecarHeads.count > 0
    ? `${fmt((o.sidecarHeads.within5ms / o.sidecarHeads.count) * 100, 1)}% of ${o.sidecarHeads.count}` : '-';
  const main = o.mainGrowthBytes === undefined ? '' : `, main thread +${fmt(o.mainGrowthBytes / 2 ** 20)}`;
  const rss = o.rssGrowthBytes === undefined ? '-'
    : o.feedBytes < 64 * 1024 ? `(+${mb(o.rssGrowthBytes)}${main})`
      : `${fmt(o.rssGrowthBytes / o.feedBytes, 1)}× (+${mb(o.rssGrowthBytes)}${main})`;
  const read = o.answer.startsWith('no read') ? '-' : o.readMs === undefined ? `> ${fmt(capMs / 1000)} s (${o.stallAtLeast ? 'stalled' : 'never ended'})`
    : o.cutMs !== undefined ? `${seconds(o.readMs)} (upstream cut after ${seconds(o.cutMs)})` : seconds(o.readMs);
  return [stall, head, share, rss, read, o.answer];
}

function table(role: Role, kinds: HostileKind[], sides: Side[], results: Map<string, Outcome>, capMs: number): string {
  const names = ['longest stall ms (gap: CPU, queued)', 'HEAD p50 / p99 / max ms (sender)', 'HEADs ≤ 5 ms at the sidecar',
    'RSS growth ÷ feed bytes', 'read time', 'answer'];
  const header = names.flatMap((name) => sides.map((side) => (sides.length > 1 ? `${name}, ${side.name}` : name)));
  const rows = [
    `| kind | ${header.join(' | ')} |`,
    `|---|${header.map((_, i) => (i >= header.length - 2 * sides.length ? '---' : '---:')).join('|')}|`,
  ];
  for (const kind of kinds) {
    const bySide = sides.map((side) => cells(results.get(`${side.name} ${role} ${kind.slug}`), capMs));
    const row = names.flatMap((_, i) => bySide.map((c) => c[i] ?? '-'));
    rows.push(`| ${kind.name} | ${row.join(' | ')} |`);
  }
  return rows.join('\n');
}

function goals(kinds: HostileKind[], results: Map<string, Outcome>): string {
  const lines = ['Goals, after side (longest stall ≤ 20 ms; HEAD p99 ≤ 5 ms at the sidecar, i.e. ≥ 99% of its HEAD answers '
    + 'within 5 ms; RSS growth ≤ 10× the feed bytes for the 12 MB first read):'];
  for (const role of ['own', 'peer'] as const) {
    for (const kind of kinds) {
      const o = results.get(`after ${role} ${kind.slug}`);
      if (!o || kind === control) continue;
      const heads = o.sidecarHeads;
      const share = heads && heads.count > 0 ? heads.within5ms / heads.count : Number.NaN;
      const cpu = o.gap ? ` (main-thread CPU in the longest gap ${fmt(o.gap.cpuMs)} ms, queued ${fmt(o.gap.queuedMs)} ms)` : '';
      const parts = [`stall ${fmt(o.stallMs, 1)} ms${cpu} ${verdict(!o.stallAtLeast && o.stallMs <= 20)}`,
        `≤ 5 ms ${fmt(share * 100, 1)}% ${verdict(share >= 0.99)}`];
      if (kind.slug === 'size-12mb' && o.rssGrowthBytes !== undefined) {
        parts.push(`RSS ${fmt(o.rssGrowthBytes / o.feedBytes, 1)}× ${verdict(o.rssGrowthBytes <= 10 * o.feedBytes)}`);
      }
      lines.push(`- ${role === 'own' ? 'own feed' : 'peer feed'}, ${kind.name}: ${parts.join('; ')}`);
    }
  }
  return lines.join('\n');
}

function sideOf(name: Side['name'], dir: string): Side {
  const commit = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  return { name, root: dir, commit };
}

/** Runs the hostile-feed benchmark; returns its tables. */
export async function main(): Promise<string> {
  const capMs = Number(process.env.BENCH_CAP_S ?? 90) * 1000;
  const sides: Side[] = [];
  const beforeDir = process.env.BENCH_BEFORE;
  if (beforeDir) {
    const dir = resolve(beforeDir);
    if (!existsSync(`${dir}/src/app.ts`) || !existsSync(`${dir}/node_modules`)) {
      throw new Error(`BENCH_BEFORE=${beforeDir} is not a checkout with src/app.ts and node_modules`);
    }
    sides.push(sideOf('before', dir));
  }
  sides.push(sideOf('after', root));
  const chosen = process.env.BENCH_KINDS?.split(',');
  const children: ChildProcess[] = [];
  try {
    const upstream = `http://127.0.0.1:${await startProcess(['bench/fixtures/hostile-upstream.ts'], children)}`;
    const sizes = JSON.parse((await get(`${upstream}/_kinds`, 10_000))?.body.toString('utf8') ?? '{}') as
      Record<string, { bytes: number; events: number }>;
    const kinds = [control, ...hostileKinds(Date.now())]
      .filter((k) => !chosen || chosen.includes(k.name) || chosen.includes(k.slug));
    const results = new Map<string, Outcome>();
    const started = performance.now();
    const loadBefore = loadavg()[0] ?? Number.NaN;
    for (const role of ['own', 'peer'] as const) {
      for (const kind of kinds) {
        for (const side of sides) {
          const t = performance.now();
          const outcome = await scenario(side, kind, role, upstream, sizes[kind.slug]?.bytes ?? 0, capMs);
          results.set(`${side.name} ${role} ${kind.slug}`, outcome);
          process.stderr.write(`hostile: ${side.name} ${role} ${kind.name}: ${seconds(performance.now() - t)}\n`);
        }
      }
    }
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const facts = [
      `Machine: ${availableParallelism()} cores (${cpu}), ${fmt(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}, `
      + `${process.platform}. ${sides.map((s) => `${s.name}: ${s.commit} (${s.root})`).join('; ')}. `
      + `Wall time ${fmt((performance.now() - started) / 1000)} s; 1-minute load average ${fmt(loadBefore, 2)} at the `
      + `start, ${fmt(loadavg()[0] ?? Number.NaN, 2)} at the end (other work on the machine shows up as "queued").`,
      '',
      `Each scenario: a fresh sidecar (own process, \`timeouts.upstream: ${upstreamTimeout}\`, \`snapshots.maxBodyBytes: 64MiB\`, `
      + '`push.debounce: 10ms`, `push.watch: 0`), a fake upstream (own process) serving the feed, and '
      + `${headRate} HEAD/s from a third process on another feed's path (answered from its snapshot) for the read `
      + `and ${settleMs} ms after it, at least ${minLoadMs / 1000} s. Own feed: an enhanced GET of the listing's feed (its `
      + 'one peer is a tiny calendar). Peer feed: an inbound HEAD on the listing\'s (tiny) feed; the read ends when the '
      + `push run logs its outcome. Every run is capped at ${fmt(capMs / 1000)} s. Stall: the largest `
      + '`monitorEventLoopDelay({ resolution: 10 })` sample (an idle loop reads ≈ 10 ms); in parentheses the longest gap '
      + 'between two 10 ms ticks of the sidecar\'s main thread, the CPU time that thread spent in it (its own work) and the '
      + 'time it waited for a CPU (the machine busy elsewhere). RSS: peak − start, sampled every 10 ms by a thread of the '
      + 'sidecar process; "main thread" is the peak growth of that thread\'s heap and external memory, the rest is the '
      + 'worker threads\'. HEADs ≤ 5 ms: the sidecar\'s `icalpush_request_duration_seconds{route="feed"}` buckets before '
      + 'and after (the hostile GET taken out); it times a request from its handler on, so a HEAD that waited in the socket '
      + 'during a stall counts as fast there.',
      '',
      '| kind | what | events | bytes |',
      '|---|---|---:|---:|',
      ...kinds.map((k) => `| ${k.name} | ${k.what} | ${sizes[k.slug]?.events ?? '-'} | ${sizes[k.slug] ? `${sizes[k.slug]?.bytes} (${mb(sizes[k.slug]?.bytes ?? 0)})` : '-'} |`),
    ];
    return [
      facts.join('\n'),
      `### As the listing's own feed (GET through the sidecar)\n\n${table('own', kinds, sides, results, capMs)}`,
      `### As a peer's feed (read after an inbound HEAD)\n\n${table('peer', kinds, sides, results, capMs)}`,
      goals(kinds, results),
    ].join('\n\n');
  } finally {
    for (const child of children) child.kill('SIGTERM');
  }
}

if (import.meta.main) {
  process.stdout.write(`${await main()}\n`);
}
