// Outbound iPP notifications (SPEC "Push" → "Outbound", iPP §3.1): one body-less HEAD per peer,
// coalesced, bounded in concurrency, retried with backoff for `push.retryFor`, and kept in a durable
// outbox in the store so that a crash or restart loses no pending notification. The outbox's due queue is
// the schedule: what is due is taken with a lease (SPEC "Several replicas"), so with several replicas each
// notification is sent by one of them, and one killed mid-delivery leaves it to another.
import pkg from '../../package.json' with { type: 'json' };
import type { Clock, Timer } from '../clock.ts';
import { briefError, hasCode, IcalpushError } from '../errors.ts';
import type { OutboundClient } from '../http/clients.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { notifyOnce } from './notify-once.ts';
import { createOutbox, type OutboxEntry, outboxKey } from './outbox.ts';
import type { CounterSeries, Registry } from '../metrics/registry.ts';
import type { Claim, Store } from '../store/store.ts';

export { outboxNamespace } from './outbox.ts';

/** One peer of a listing to notify: its configured calendar URL, secrets in the query included. */
export type PeerTarget = { listing: string; name: string; url: string };

/** A pending notification as `pending()` reports it (URL redacted). */
export type PendingNotification = {
  listing: string;
  name: string;
  url: string;
  attempts: number;
  dueAt: number;
  lastError?: string;
};

/** What the notifier remembers of one peer, for the status page. */
export type PeerNotifyState = { lastNotifiedAt?: number; lastError?: { at: number; reason: string } };

/** Sends iPP notifications to peers. */
export type Notifier = {
  /**
   * Queues one notification per target; a target that already has one waiting keeps that one
   * (coalescing). Resolves once every new entry is in the store; sends after the coalescing window.
   */
  notify(targets: PeerTarget[], reason: string): Promise<void>;
  /** Pending notifications, soonest first, URLs redacted. */
  pending(listing?: string): Promise<PendingNotification[]>;
  /** Per peer URL of `listing` (unique there, unlike names): last successful notification and last error
   * (in memory). */
  peerState(listing: string): Record<string, PeerNotifyState>;
  /** Resumes the outbox left in the store (after a restart) and sends the entries already due at once. */
  start(): Promise<void>;
  /** Stops the scheduler and waits for in-flight HEADs (each bounded by the timeout); the outbox stays. */
  close(): Promise<void>;
};

/** Options of createNotifier; everything but the dependencies and userAgent has a default. */
export type NotifierOptions = {
  store: Store;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** The one outbound client (owned by the caller, closed after the notifier). */
  client: OutboundClient;
  /** `push.userAgent` (e.g. `iPP/0.1`); the User-Agent sent starts with it. */
  userAgent: string;
  /** Total deadline of one HEAD (connect, headers, the drained body); 5000 by default. */
  timeoutMs?: number;
  /** HEADs in flight at once; 8 by default. */
  concurrency?: number;
  /** Window in which notifications for the same peer are coalesced; 10 ms by default. */
  coalesceMs?: number;
  /** `push.retryFor`: how long after it was queued a failing notification is still retried; 24 h by default. */
  retryForMs?: number;
  /** Retry delay: `baseMs` doubling per attempt up to `maxMs`, with equal jitter; 1 s and 5 min by default. */
  backoff?: { baseMs: number; maxMs: number };
  /** Bound on the outbox; past it new notifications are refused (logged, counted); 100,000 by default. */
  maxPending?: number;
  /** How long a claimed notification is this replica's: a HEAD's deadline and its bookkeeping. */
  leaseMs?: number;
  /** With a shared store, how often the outbox is asked for what is due (another replica's, taken over). */
  pollMs?: number;
  /** Called on each delivery with the time since the notification was queued, in ms. */
  onSent?: (target: PeerTarget, ms: number) => void;
};

/** The counter of notifications by outcome. */
export const notificationsMetricName = 'icalpush_push_notifications_total';

/** The gauge of notifications waiting in the outbox (including those in flight). */
export const pendingMetricName = 'icalpush_push_pending_notifications';

/** What one notification came to (the `outcome` label). */
export type NotifyOutcome = 'sent' | 'failed' | 'retried' | 'dropped' | 'refused';

const outcomes = ['sent', 'failed', 'retried', 'dropped', 'refused'] as const satisfies readonly NotifyOutcome[];

// After a store failure, the outbox is asked again this soon.
const storeRetryMs = 1_000;
// Notifications kept in memory while the store is unreachable, at most.
const maxBacklog = 10_000;
// With several replicas, how often outbox entries that lost their place in the queue are put back on it.
const sweepIntervalMs = 60_000;

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

function isHttpUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** Creates the notifier; call start() once to resume the outbox left by a previous run. */
export function createNotifier(options: NotifierOptions): Notifier {
  const { store, clock, logger, registry, client, onSent } = options;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const concurrency = options.concurrency ?? 8;
  const coalesceMs = options.coalesceMs ?? 10;
  const retryForMs = options.retryForMs ?? 86_400_000;
  const backoff = options.backoff ?? { baseMs: 1_000, maxMs: 300_000 };
  const maxPending = options.maxPending ?? 100_000;
  // The HEAD's deadline and the store calls around it (each bounded by the store's own 2 s), with room to spare.
  const leaseMs = options.leaseMs ?? timeoutMs + 10_000;
  // A store of this process alone is changed only here: every change pumps, nothing needs polling.
  const pollMs = store.shared ? options.pollMs ?? 1_000 : Infinity;
  const userAgent = `${options.userAgent} icalpush/${pkg.version}`;
  const log = logger.child({ component: 'push' });

  const outbox = createOutbox(store, (key) => log.warn({ key }, 'push outbox entry unreadable, removed'));
  const peers = new Map<string, Map<string, PeerNotifyState>>();
  // The claims this replica is sending, by lease token: a timer for one of those would only wake it early.
  const sending = new Map<string, Claim>();
  const inflight = new Set<Promise<void>>();
  let pendingCount = 0;
  let timer: Timer | undefined;
  let timerDueAt = Infinity;
  let closed = false;
  let started = false;
  let unreachable = false;

  const counter = registry.counter(
    notificationsMetricName,
    'Outbound iPP notifications (HEAD to a peer) by outcome: sent, failed (4xx, not retried), ' +
    'retried, dropped (still failing after push.retryFor), refused (outbox full).',
    ['outcome'],
  );
  const counted = new Map(outcomes.map((o) => [o, counter.labels(o)])) as Map<NotifyOutcome, CounterSeries>;
  const count = (outcome: NotifyOutcome) => counted.get(outcome)?.inc();
  registry.gauge(
    pendingMetricName,
    'Notifications waiting in the outbox, in flight included (as last counted by this replica).',
    [],
    (gauge) => gauge.labels().set(pendingCount),
  );

  function peerStateFor(listing: string, url: string): PeerNotifyState {
    let byUrl = peers.get(listing);
    if (byUrl === undefined) {
      byUrl = new Map();
      peers.set(listing, byUrl);
    }
    let state = byUrl.get(url);
    if (state === undefined) {
      state = {};
      byUrl.set(url, state);
    }
    return state;
  }

  // One pass at a time; a pass asked for while one runs makes that one run again (single flight).
  let pass: Promise<void> | undefined;
  let again = false;

  /** Takes what is due (as many as there are free slots) and arms one timer for the soonest next. */
  function pump(): Promise<void> {
    if (closed || !started) return Promise.resolve();
    if (pass !== undefined) {
      again = true;
      return pass;
    }
    pass = (async () => {
      do {
        again = false;
        await pumpOnce();
      } while (again && !closed);
    })().finally(() => {
      pass = undefined;
    });
    return pass;
  }

  async function pumpOnce(): Promise<void> {
    let next: number | undefined;
    try {
      let claimed = false;
      while (!closed && inflight.size < concurrency) {
        const claims = await outbox.claim(clock.now(), leaseMs, concurrency - inflight.size);
        if (claims.length === 0) break;
        claimed = true;
        for (const claim of claims) begin(claim);
      }
      next = await outbox.next();
      // The gauge is recounted when something moved; an idle poll costs its claim and its next only.
      if (claimed || inflight.size > 0 || pendingCount > 0) pendingCount = await outbox.size();
    } catch (err) {
      // Once per outage, not once per pass.
      if (!unreachable) log.warn({ err: briefError(err) }, 'push outbox unreachable: asked again every second');
      unreachable = true;
      arm(clock.now() + storeRetryMs);
      return;
    }
    if (unreachable) log.info('push outbox reachable again');
    unreachable = false;
    // The soonest is a lease of this replica's: its end pumps again.
    if (next !== undefined && [...sending.values()].some((claim) => claim.token === next)) next = undefined;
    arm(Math.min(next ?? Infinity, clock.now() + pollMs));
  }

  // One timer for the earliest due entry, never one per entry (STYLE: no unbounded timers).
  function arm(at: number): void {
    if (closed || !Number.isFinite(at)) return;
    if (inflight.size >= concurrency) return; // a finishing HEAD pumps
    if (timer !== undefined && timerDueAt <= at) return;
    clock.clearTimeout(timer);
    timerDueAt = at;
    timer = clock.setTimeout(() => {
      timer = undefined;
      timerDueAt = Infinity;
      void pump();
    }, Math.max(0, at - clock.now()));
  }

  function begin(claim: Claim): void {
    sending.set(claim.member, claim);
    const run = send(claim).catch((err: unknown) => {
      log.error({ err, key: claim.member }, 'push notification bookkeeping failed');
    }).finally(() => {
      sending.delete(claim.member);
      inflight.delete(run);
      void pump();
    });
    inflight.add(run);
  }

  const head = (url: string) => notifyOnce(client, url, { userAgent, timeoutMs, now: () => clock.now() });

  /** When the next attempt is due, or undefined when the notification is past its `retryFor`. */
  function nextAttemptAt(entry: OutboxEntry, attempts: number, now: number, retryAfterMs: number | undefined) {
    const deadline = (entry.lastQueuedAt ?? entry.firstQueuedAt) + retryForMs;
    if (now >= deadline) return undefined;
    const full = Math.min(backoff.baseMs * 2 ** Math.min(attempts - 1, 30), backoff.maxMs);
    // Equal jitter: peers that failed together do not all come back in the same instant.
    const jittered = Math.round(full / 2 + Math.random() * (full / 2));
    // Retry-After is a lower bound (RFC 9110 §10.2.3); the deadline bounds everything, so the
    // last attempt is at the deadline at the latest.
    return Math.min(now + Math.max(jittered, retryAfterMs ?? 0), deadline);
  }

  async function send(claim: Claim): Promise<void> {
    const key = claim.member;
    const entry = await outbox.get(key);
    if (entry === undefined) {
      // Its entry is gone (sent and forgotten by a replica that died before unscheduling it): nothing to send.
      await outbox.complete(claim);
      return;
    }
    const startedAt = clock.now();
    const outcome = await head(entry.url);
    const now = clock.now();
    const attempts = entry.attempts + 1;
    // A notify() during the HEAD may have restarted the retry period (and then the peer is told again).
    const latest = await outbox.get(key);
    const current = latest?.lastQueuedAt === undefined ? entry : { ...entry, lastQueuedAt: latest.lastQueuedAt };
    const { listing, name, reason } = entry;
    const target: PeerTarget = { listing, name, url: entry.url };
    const fields = { listing, peer: name, host: hostOf(entry.url), attempts, reason };
    const state = peerStateFor(listing, entry.url);

    const dueAt = outcome.kind === 'retry' ? nextAttemptAt(current, attempts, now, outcome.retryAfterMs) : undefined;
    if (outcome.kind === 'retry' && dueAt !== undefined) {
      await outbox.put(key, { ...current, attempts, dueAt, lastError: outcome.error });
      // Not moved when the lease ran out meanwhile and another replica took the notification: it is that one's.
      await outbox.retry(claim, dueAt);
      // Told once the outbox holds it: what a reader of the log line sees pending is what it says.
      state.lastError = { at: now, reason: outcome.error };
      count('retried');
      const cause = outcome.cause === undefined ? {} : { cause: outcome.cause };
      log.debug({ ...fields, error: outcome.error, ...cause, delayMs: dueAt - now }, 'push notification will be retried');
      return;
    }

    await settle(claim, entry, latest, now);
    if (outcome.kind === 'delivered') {
      state.lastNotifiedAt = now;
      count('sent');
      const ms = now - entry.firstQueuedAt;
      log.info({ ...fields, status: outcome.status, ms, headMs: now - startedAt }, 'push notification sent');
      onSent?.(target, ms);
    } else if (outcome.kind === 'refused') {
      state.lastError = { at: now, reason: `status ${outcome.status}` };
      count('failed');
      log.warn({ ...fields, status: outcome.status }, 'push notification refused by peer');
    } else {
      state.lastError = { at: now, reason: outcome.error };
      count('dropped');
      // Host, never the URL: its query carries the peer's secret.
      const cause = outcome.cause === undefined ? {} : { cause: outcome.cause };
      log.error(
        { ...fields, error: outcome.error, ...cause, retriedForMs: now - entry.firstQueuedAt, retryForMs },
        'push notification dropped after last attempt',
      );
    }
  }

  /**
   * A notification's last attempt is done: its claim ends, and the entry goes, unless a notify() joined while
   * the HEAD was in flight (it changed the entry's lastQueuedAt): the peer may have read the feed before that
   * change, so it is told once more, as a new notification. The entry is forgotten only if it is still what
   * was read after the HEAD, so a notify() landing in between is never lost; one landing after finds no entry
   * and writes a new one. A notify() never moves a claimed entry, so no two HEADs of one entry are in flight.
   */
  async function settle(claim: Claim, entry: OutboxEntry, latest: OutboxEntry | undefined, now: number): Promise<void> {
    const key = claim.member;
    const joined = latest !== undefined && latest.lastQueuedAt !== entry.lastQueuedAt;
    if (joined) {
      // Told again: the entry anew, then the claim moved to it in one step, so it never leaves the queue (a
      // failure or a kill in between leaves it claimed, and due again once the lease runs out).
      const { lastError: _previous, ...rest } = await outbox.get(key) ?? latest;
      await outbox.put(key, { ...rest, attempts: 0, dueAt: now + coalesceMs, firstQueuedAt: now });
      if (!(await outbox.retry(claim, now + coalesceMs))) await outbox.schedule(key, now + coalesceMs);
      return;
    }
    // The lease ran out and another replica took the notification: it is that one's now.
    if (!(await outbox.complete(claim))) return;
    if (latest === undefined || await outbox.forgetIf(key, latest)) return;
    // Changed since it was read (a notify() landed just now): told again.
    await outbox.schedule(key, now + coalesceMs);
  }

  /** Writes one notification per target to the outbox (coalescing with those there), then pumps. */
  async function queueTargets(targets: PeerTarget[], reason: string, now: number): Promise<void> {
    let size = await outbox.size();
    for (const target of targets) {
      const key = outboxKey(target.listing, target.url);
      const fields = { listing: target.listing, peer: target.name, host: hostOf(target.url) };
      if (!isHttpUrl(target.url)) {
        count('failed');
        log.error(fields, 'push notification for a peer URL that is not http(s)');
        continue;
      }
      const existing = await outbox.get(key);
      const dueAt = now + coalesceMs;
      if (existing !== undefined) {
        // Coalesced into the waiting one (which keeps its time), or, in flight, told again after it (its sender
        // sees the change); a newer change restarts its retry period (SPEC: push.retryFor). Scheduled after it
        // is changed, for the one case where the sender forgot the entry just before: then it is new.
        await outbox.put(key, { ...existing, lastQueuedAt: now });
        await outbox.schedule(key, dueAt);
        continue;
      }
      if (size >= maxPending) {
        count('refused');
        log.error({ ...fields, maxPending }, 'push notification refused: outbox full');
        continue;
      }
      // The entry first: whoever claims the key finds what to send.
      await outbox.put(key, { ...target, reason, attempts: 0, dueAt, firstQueuedAt: now });
      await outbox.schedule(key, dueAt);
      size += 1;
    }
    pendingCount = size;
    // Scheduled only once written, so nothing is sent that a crash could not resume.
    await pump();
  }

  /**
   * Puts every outbox entry on the schedule. This process alone: what a previous run left (leased or not) is due
   * as planned. Several replicas: only entries that lost their place in the queue (a replica killed between two
   * writes) are added; what is scheduled or claimed keeps its time.
   */
  async function sweep(): Promise<number> {
    let resumed = 0;
    for await (const [key, entry] of outbox.entries()) {
      if (closed) break;
      if (store.shared) await outbox.schedule(key, entry.dueAt);
      else await outbox.hasten(key, entry.dueAt);
      resumed += 1;
    }
    return resumed;
  }

  let sweepTimer: Timer | undefined;
  function armSweep(): void {
    if (closed) return;
    sweepTimer = clock.setTimeout(() => {
      void sweep().catch(() => 0).finally(armSweep);
    }, sweepIntervalMs);
  }

  // Notifications accepted while the store was unreachable, oldest first (bounded): written once it answers.
  const backlog: { targets: PeerTarget[]; reason: string; at: number }[] = [];
  let backlogSize = 0;
  let flushTimer: Timer | undefined;

  function keepInMemory(targets: PeerTarget[], reason: string): void {
    if (backlogSize + targets.length > maxBacklog) {
      count('refused');
      log.error({ targets: targets.length, maxBacklog }, 'push notification refused: store unreachable and backlog full');
      return;
    }
    if (backlog.length === 0) log.warn({ targets: targets.length }, 'push outbox unreachable: notifications kept in memory');
    backlog.push({ targets, reason, at: clock.now() });
    backlogSize += targets.length;
    armFlush();
  }

  function armFlush(): void {
    if (closed || flushTimer !== undefined || backlog.length === 0) return;
    flushTimer = clock.setTimeout(() => {
      flushTimer = undefined;
      void flushBacklog().catch(() => armFlush());
    }, storeRetryMs);
  }

  /** Writes what waited in memory, oldest first; rejects (keeping the rest) while the store is unreachable. One
   * flush at a time: every caller waits for the one under way. */
  let flushing: Promise<void> | undefined;
  function flushBacklog(): Promise<void> {
    if (backlog.length === 0) return flushing ?? Promise.resolve();
    flushing ??= (async () => {
      let written = 0;
      while (backlog.length > 0) {
        const item = backlog[0]!;
        await queueTargets(item.targets, item.reason, item.at);
        backlog.shift();
        backlogSize -= item.targets.length;
        written += item.targets.length;
      }
      if (written > 0) log.info({ written }, 'push notifications kept in memory written to the outbox');
    })().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  return {
    async notify(targets, reason) {
      if (closed) throw new IcalpushError('SHUTTING_DOWN', 'the notifier is closed');
      try {
        await flushBacklog();
        await queueTargets(targets, reason, clock.now());
      } catch (err) {
        if (!hasCode(err, 'STORE_UNAVAILABLE')) throw err;
        // SPEC "Several replicas": with the store unreachable, nothing acknowledged is lost. The notification
        // waits in memory (bounded) and is written once the store answers again.
        keepInMemory(targets, reason);
      }
    },

    async pending(listing) {
      const list: PendingNotification[] = [];
      for await (const [, entry] of outbox.entries()) {
        if (listing !== undefined && entry.listing !== listing) continue;
        const item: PendingNotification = {
          listing: entry.listing,
          name: entry.name,
          url: redactUrl(entry.url),
          attempts: entry.attempts,
          dueAt: entry.dueAt,
        };
        if (entry.lastError !== undefined) item.lastError = entry.lastError;
        list.push(item);
      }
      return list.sort((a, b) => a.dueAt - b.dueAt);
    },

    peerState(listing) {
      const byUrl = peers.get(listing);
      if (byUrl === undefined) return {};
      return Object.fromEntries(Array.from(byUrl, ([url, state]) => [url, { ...state }]));
    },

    async start() {
      const resumed = await sweep();
      if (resumed > 0) log.info({ pending: resumed }, 'push outbox resumed');
      started = true;
      await pump();
      if (store.shared) armSweep();
    },

    async close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      clock.clearTimeout(flushTimer);
      clock.clearTimeout(sweepTimer);
      timer = undefined;
      if (backlogSize > 0) log.error({ lost: backlogSize }, 'push notifications kept in memory lost at shutdown: store unreachable');
      // Each HEAD is bounded by its deadline; the client is the caller's to close, after this.
      await Promise.allSettled([...inflight]);
      await pass;
    },
  };
}
