// Outbound iPP notifications (SPEC "Push" → "Outbound", iPP §3.1): one body-less HEAD per peer,
// coalesced, bounded in concurrency, retried with backoff for `push.retryFor`, and kept in a durable
// outbox in the store so that a crash or restart loses no pending notification.
import { createHash } from 'node:crypto';
import pkg from '../../package.json' with { type: 'json' };
import type { Clock, Timer } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import type { OutboundClient } from '../http/clients.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { createDueHeap } from '../util/due-heap.ts';
import { notifyOnce } from './notify-once.ts';
import { createKeyedQueue } from '../util/keyed-queue.ts';
import type { CounterSeries, Registry } from '../metrics/registry.ts';
import type { Store, StoreNamespace } from '../store/store.ts';

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
  /** Loads the outbox from the store (after a restart) and sends the entries already due at once. */
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
  /** Called on each delivery with the time since the notification was queued, in ms. */
  onSent?: (target: PeerTarget, ms: number) => void;
};

/** The store namespace of the outbox: one entry per (listing, peer URL). */
export const outboxNamespace = 'push_outbox';

/** The counter of notifications by outcome. */
export const notificationsMetricName = 'icalpush_push_notifications_total';

/** The gauge of notifications waiting in the outbox (including those in flight). */
export const pendingMetricName = 'icalpush_push_pending_notifications';

/** What one notification came to (the `outcome` label). */
export type NotifyOutcome = 'sent' | 'failed' | 'retried' | 'dropped' | 'refused';

const outcomes = ['sent', 'failed', 'retried', 'dropped', 'refused'] as const satisfies readonly NotifyOutcome[];

/** One outbox entry as stored. */
type OutboxEntry = {
  listing: string;
  name: string;
  url: string;
  reason: string;
  attempts: number;
  dueAt: number;
  firstQueuedAt: number;
  /** The latest notify() that joined this entry: a newer change is retried for retryFor from then. */
  lastQueuedAt?: number;
  lastError?: string;
};

/** The in-memory twin of a stored entry, with what only this process needs. */
type Slot = {
  key: string;
  entry: OutboxEntry;
  sending: boolean;
  /** A notify() arrived while the HEAD was in flight: the peer may have read the old feed. */
  again: boolean;
};

// Keys are a hash so the store never holds the peer URL (and its secret) in a key, and so two
// listings sharing a peer URL stay distinct.
function outboxKey(listing: string, url: string): string {
  return createHash('sha256').update(listing).update('\u0000').update(url).digest('base64url');
}

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

function isOutboxEntry(value: unknown): value is OutboxEntry {
  const v = value as Partial<OutboxEntry> | null;
  return (
    typeof v === 'object' && v !== null &&
    typeof v.listing === 'string' && typeof v.name === 'string' && typeof v.url === 'string' &&
    typeof v.attempts === 'number' && typeof v.dueAt === 'number' && typeof v.firstQueuedAt === 'number'
  );
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
  const userAgent = `${options.userAgent} icalpush/${pkg.version}`;
  const log = logger.child({ component: 'push' });

  const outbox: StoreNamespace = store.namespace(outboxNamespace);
  const slots = new Map<string, Slot>();
  const heap = createDueHeap();
  const peers = new Map<string, Map<string, PeerNotifyState>>();
  // Store writes per key run one after another, so a delete and a re-queue cannot land out of order.
  const writes = createKeyedQueue();
  const inflight = new Set<Promise<void>>();
  let timer: Timer | undefined;
  let timerDueAt = Infinity;
  let closed = false;

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
    'Notifications waiting in the outbox, in flight included.',
    [],
    (gauge) => gauge.labels().set(slots.size),
  );

  function write(key: string, op: () => Promise<unknown>): Promise<void> {
    return writes(key, op).then(() => undefined);
  }

  function persist(slot: Slot): Promise<void> {
    const entry = { ...slot.entry };
    return write(slot.key, () => outbox.set(slot.key, entry));
  }

  function forget(key: string): Promise<void> {
    return write(key, () => outbox.delete(key));
  }

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

  function enqueue(slot: Slot): void {
    slots.set(slot.key, slot);
    heap.push(slot.entry.dueAt, slot.key);
    schedule();
  }

  /** The soonest waiting slot, dropping heap items left behind by rescheduled or finished entries. */
  function soonest(): Slot | undefined {
    for (;;) {
      const top = heap.peek();
      if (top === undefined) return undefined;
      const slot = slots.get(top.key);
      if (slot !== undefined && !slot.sending && slot.entry.dueAt === top.dueAt) return slot;
      heap.pop();
    }
  }

  // One timer for the earliest due entry, never one per entry (STYLE: no unbounded timers).
  function schedule(): void {
    if (closed) return;
    const next = soonest();
    if (next === undefined) return;
    if (inflight.size >= concurrency) return; // a finishing HEAD calls pump()
    if (timer !== undefined && timerDueAt <= next.entry.dueAt) return;
    clock.clearTimeout(timer);
    timerDueAt = next.entry.dueAt;
    timer = clock.setTimeout(() => {
      timer = undefined;
      timerDueAt = Infinity;
      pump();
    }, Math.max(0, next.entry.dueAt - clock.now()));
  }

  function pump(): void {
    if (closed) return;
    while (inflight.size < concurrency) {
      const slot = soonest();
      if (slot === undefined || slot.entry.dueAt > clock.now()) break;
      heap.pop();
      slot.sending = true;
      const run = send(slot).catch((err: unknown) => {
        log.error({ err, listing: slot.entry.listing, peer: slot.entry.name }, 'push notification bookkeeping failed');
      }).finally(() => {
        inflight.delete(run);
        pump();
      });
      inflight.add(run);
    }
    schedule();
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

  async function send(slot: Slot): Promise<void> {
    const { entry } = slot;
    const startedAt = clock.now();
    const outcome = await head(entry.url);
    const now = clock.now();
    const attempts = entry.attempts + 1;
    // A notify() during the HEAD may have restarted the retry period.
    const lastQueuedAt = slot.entry.lastQueuedAt;
    const target: PeerTarget = { listing: entry.listing, name: entry.name, url: entry.url };
    const { listing, name, reason } = entry;
    const fields = { listing, peer: name, host: hostOf(entry.url), attempts, reason };
    const state = peerStateFor(entry.listing, entry.url);

    const current = lastQueuedAt === undefined ? entry : { ...entry, lastQueuedAt };
    const dueAt = outcome.kind === 'retry' ? nextAttemptAt(current, attempts, now, outcome.retryAfterMs) : undefined;
    if (outcome.kind === 'retry' && dueAt !== undefined) {
      const delayMs = dueAt - now;
      slot.entry = { ...current, attempts, dueAt, lastError: outcome.error };
      slot.sending = false;
      slot.again = false; // the retry will reach the peer after the newer change anyway
      state.lastError = { at: now, reason: outcome.error };
      count('retried');
      const cause = outcome.cause === undefined ? {} : { cause: outcome.cause };
      log.debug({ ...fields, error: outcome.error, ...cause, delayMs }, 'push notification will be retried');
      heap.push(slot.entry.dueAt, slot.key);
      await persist(slot);
      return;
    }

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

    if (slot.again && !closed) {
      // A change arrived while this HEAD was in flight: tell the peer once more.
      const { lastError: _previous, ...rest } = entry;
      slot.entry = { ...rest, attempts: 0, dueAt: now + coalesceMs, firstQueuedAt: now };
      slot.sending = false;
      slot.again = false;
      heap.push(slot.entry.dueAt, slot.key);
      await persist(slot);
      return;
    }
    slots.delete(slot.key);
    await forget(slot.key);
  }

  return {
    async notify(targets, reason) {
      if (closed) throw new IcalpushError('SHUTTING_DOWN', 'the notifier is closed');
      const stored: Promise<void>[] = [];
      const added: Slot[] = [];
      const now = clock.now();
      for (const target of targets) {
        const key = outboxKey(target.listing, target.url);
        const existing = slots.get(key);
        if (existing !== undefined) {
          // Coalesced into the waiting one; a newer change restarts its retry period (SPEC: push.retryFor).
          existing.entry = { ...existing.entry, lastQueuedAt: now };
          if (existing.sending) existing.again = true;
          else stored.push(persist(existing));
          continue;
        }
        const fields = { listing: target.listing, peer: target.name, host: hostOf(target.url) };
        if (!isHttpUrl(target.url)) {
          count('failed');
          log.error(fields, 'push notification for a peer URL that is not http(s)');
          continue;
        }
        if (slots.size >= maxPending) {
          count('refused');
          log.error({ ...fields, maxPending }, 'push notification refused: outbox full');
          continue;
        }
        const slot: Slot = {
          key,
          sending: false,
          again: false,
          entry: { ...target, reason, attempts: 0, dueAt: now + coalesceMs, firstQueuedAt: now },
        };
        stored.push(persist(slot));
        // In memory at once, so a second notify() in the same window coalesces with this one.
        slots.set(key, slot);
        added.push(slot);
      }
      const results = await Promise.allSettled(stored);
      // Scheduled only once written, so nothing is sent that a crash could not resume.
      if (!closed) for (const slot of added) if (!slot.sending) heap.push(slot.entry.dueAt, slot.key);
      schedule();
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    },

    async pending(listing) {
      const list: PendingNotification[] = [];
      for (const { entry } of slots.values()) {
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
      let loaded = 0;
      for await (const [key, value] of outbox.entries<unknown>()) {
        if (closed) return;
        if (slots.has(key)) continue;
        if (!isOutboxEntry(value)) {
          log.warn({ key }, 'push outbox entry unreadable, removed');
          await forget(key);
          continue;
        }
        if (slots.size >= maxPending) {
          count('refused');
          log.error({ listing: value.listing, peer: value.name, maxPending }, 'push notification refused: outbox full');
          continue;
        }
        enqueue({ key, entry: { ...value, reason: value.reason ?? 'resumed' }, sending: false, again: false });
        loaded += 1;
      }
      if (loaded > 0) log.info({ pending: loaded }, 'push outbox resumed');
      pump();
    },

    async close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      timer = undefined;
      // Each HEAD is bounded by its deadline; the client is the caller's to close, after this.
      await Promise.allSettled([...inflight]);
      await writes.idle();
    },
  };
}
