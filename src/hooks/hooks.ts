// iCal Hooks (SPEC "iCal Hooks", seeds/ical-hooks.md): one-shot X-ICALHOOKS-URL subscriptions
// per feed, kept in the store for 7 days, each fired with one HEAD on the feed's next change. A
// change marks the feed's hooks due in the store; a background queue sends the HEADs and forgets
// each hook only once its HEAD was answered or refused (SPEC "Outbound"), so a crash loses none.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { OutboundClient } from '../http/clients.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { createKeyedQueue } from '../util/keyed-queue.ts';
import type { Registry } from '../metrics/registry.ts';
import type { Store } from '../store/store.ts';
import { type HostLookup, isAllowedAddress, resolveTarget, systemLookup } from './address-policy.ts';
import { createDeliveryQueue } from './delivery-queue.ts';
import { deliveryResult } from './hook-delivery.ts';
import { createHookMetrics, type HookRefusal } from './hook-metrics.ts';
import { parseHookHeader } from './hook-url.ts';

export type { HookRefusal } from './hook-metrics.ts';

/** How long a subscription lives without being renewed (SPEC "iCal Hooks"). */
export const hookTtlMs = 7 * 24 * 60 * 60 * 1000;

/** Default total deadline of one HEAD. */
export const defaultHookTimeoutMs = 5_000;

/** Default bound on the wait for the hook host's DNS answer during a feed GET. */
export const defaultLookupTimeoutMs = 2_000;

/** Default number of HEADs in flight at once, all feeds together. */
export const deliveryConcurrency = 16;

// Compare-and-set attempts of one read-modify-write of a feed's hooks before it counts as a store failure.
const maxWriteAttempts = 8;
// With several replicas: a due hook being delivered is one replica's for this long (its HEADs and their
// retries); a replica killed meanwhile leaves it to the next scan of another.
const deliveryClaimMs = 60_000;
// With several replicas, how often the store is scanned for due hooks a dead replica left.
const rescanIntervalMs = 60_000;

/** Default number of due hooks held in memory for delivery; past it they wait in the store. */
export const defaultMaxQueued = 10_000;

/** The wait before the 2nd and the 3rd attempt of a HEAD that got no answer; then it is forgotten. */
export const retryDelaysMs = [1_000, 10_000] as const;

/** The store namespace holding subscriptions: one entry per feed, a list of hooks. */
export const hooksNamespace = 'hooks';

/** register()'s answer: stored (or refreshed), refused and why, or no header at all. */
export type HookRegistration = { ok: true } | { ok: false; reason: HookRefusal } | { ok: 'absent' };

/** One hook as list() shows it: query values redacted; `due` once its feed changed and until its HEAD. */
export type ListedHook = { url: string; expiresAt: number; due: boolean };

/** The iCal Hooks subscriptions of every feed. */
export type Hooks = {
  /**
   * Registers the X-ICALHOOKS-URL value(s) of a feed GET for `feed` (an opaque store key).
   * Never throws; waits at most for the DNS lookup (bounded by `lookupTimeoutMs`) and the store.
   * A URL already due stays due: it fires for the change that made it due, then is forgotten.
   * `seen` is the content tag the GET answered with: a change to that very content does not fire it.
   */
  register(feed: string, header: string | string[] | undefined, seen?: string): Promise<HookRegistration>;
  /**
   * The feed changed: marks every live hook of `feed` due (one store write) and hands them to the
   * delivery queue. Resolves once the mark is written, never waiting for a HEAD; rejects only when the
   * store could not be read (the caller keeps the change, to fire again).
   * After close() the mark is still written, and the next start() delivers. With `tag` (the content the
   * feed changed to), a hook registered by a GET that already got that content is left for the next change.
   */
  fire(feed: string, tag?: string): Promise<void>;
  /** Live and due hooks of a feed (for status), URLs with query values redacted. */
  list(feed: string): Promise<ListedHook[]>;
  /** Queues the due hooks a previous run left in the store (a crash, a shutdown, a full queue). */
  start(): Promise<void>;
  /**
   * Takes no more deliveries and waits for the HEADs in flight (each bounded by its deadline)
   * and for their store writes; hooks still due stay in the store for the next start().
   */
  close(): Promise<void>;
  /** Resolves when no delivery is queued, waiting for a retry or in flight (for tests). */
  idle(): Promise<void>;
};

/** Options for createHooks. */
export type HooksOptions = {
  store: Store;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Sends the HEADs, each over a fresh connection to the hook's stored address. */
  client: OutboundClient;
  enabled: boolean;
  /** Lets hooks point at loopback, RFC 1918, link-local and unique-local addresses. */
  allowPrivateNetworks: boolean;
  maxPerFeed: number;
  /** The HEAD's User-Agent, e.g. `iPP/0.1 icalpush`. */
  userAgent: string;
  /** Total deadline of one HEAD; 5 s by default. */
  timeoutMs?: number;
  /** Bound on the hook host's lookup at registration; 2 s by default. */
  lookupTimeoutMs?: number;
  /** Resolves hook hosts; `dns.promises.lookup` with `all` and `verbatim` by default. */
  lookup?: HostLookup;
  /** HEADs in flight at once, all feeds together; 16 by default. */
  concurrency?: number;
  /** Due hooks held in memory for delivery; the rest wait in the store until room frees. 10,000 by default. */
  maxQueued?: number;
};

/**
 * One subscription as stored: the address is the one checked at registration. `due` is set when
 * the feed changed and the HEAD is owed; entries written before it existed have none.
 */
type StoredHook = { url: string; address: string; family: 4 | 6; expiresAt: number; due?: true; seen?: string };

function isStoredHook(value: unknown): value is StoredHook {
  const hook = value as Partial<StoredHook> | null;
  return (
    typeof hook === 'object' &&
    hook !== null &&
    typeof hook.url === 'string' &&
    typeof hook.address === 'string' &&
    (hook.family === 4 || hook.family === 6) &&
    typeof hook.expiresAt === 'number' &&
    (hook.due === undefined || hook.due === true)
  );
}

/**
 * The TTL of a feed's entry: the furthest expiry of its hooks. A due hook no longer expires on its
 * own (it is owed a HEAD); it is kept 7 days from the entry's last write, so that a start() long
 * after a crash still finds it.
 */
function entryTtlMs(list: readonly StoredHook[], now: number): number {
  let ttl = 1;
  for (const hook of list) ttl = Math.max(ttl, hook.due === true ? hookTtlMs : hook.expiresAt - now);
  return ttl;
}

/** The host[:port] of a stored URL: what logs may show of it (its path and query may hold a secret). */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** One hook to deliver; `failure` is what its last attempt came to, for the retry's log line. */
type Job = { feed: string; hook: StoredHook; failure?: { code?: string; cause?: string } };

/** Creates the hooks module over `options.store`; nothing is delivered before start() or a fire(). */
export function createHooks(options: HooksOptions): Hooks {
  const {
    store, clock, logger, client, enabled, allowPrivateNetworks, maxPerFeed, userAgent,
    timeoutMs = defaultHookTimeoutMs,
    lookupTimeoutMs = defaultLookupTimeoutMs,
    lookup = systemLookup,
    concurrency = deliveryConcurrency,
    maxQueued = defaultMaxQueued,
  } = options;
  if (!Number.isInteger(maxPerFeed) || maxPerFeed < 0) throw new Error('maxPerFeed must be a non-negative integer');
  if (!(timeoutMs > 0) || !(lookupTimeoutMs > 0)) throw new Error('hook timeouts must be positive');
  const hooks = store.namespace(hooksNamespace);
  // With several replicas, who delivers a due hook now: one replica, not every one that scans the store.
  const claims = store.namespace(`${hooksNamespace}_delivering`);
  const owner = randomUUID();
  const claimKey = (feed: string, url: string) => `${feed}\u0000${url}`;
  let rescanTimer: ReturnType<Clock['setTimeout']> | undefined;
  // A register, a fire's mark and a delivery's forget of one feed never interleave their read-modify-write.
  const serialized = createKeyedQueue();
  // Set by close(), or when the client says it is shutting down: fire() then only marks.
  let stopped = false;
  let deferring = false;
  let scan: Promise<number> | undefined;
  let scanAgain = false;
  const marking = new Set<Promise<void>>();

  const queue = createDeliveryQueue<Job>({
    clock,
    concurrency,
    capacity: maxQueued,
    keyOf: ({ feed, hook }) => JSON.stringify([feed, hook.url]),
    run: (job, attempt) => deliver(job, attempt),
    onRoom() {
      deferring = false;
      void rescan();
    },
    onRetry({ feed, hook, failure }, attempt, retryInMs) {
      metrics.retried();
      const where = { feed: redactUrl(feed), host: hostOf(hook.url) };
      logger.info({ hook: { ...where, outcome: 'network_error', ...failure, attempt, retryInMs } }, 'hook delivery retried');
    },
  });
  const metrics = createHookMetrics(options.registry, () => queue.size);

  const liveOf = (stored: unknown): StoredHook[] => {
    const now = clock.now();
    return Array.isArray(stored)
      ? stored.filter((h): h is StoredHook => isStoredHook(h) && (h.due === true || h.expiresAt > now))
      : [];
  };
  const liveHooks = async (feed: string): Promise<StoredHook[]> => liveOf(await hooks.get<unknown>(feed));

  /**
   * One read-modify-write of a feed's hooks: `change` gets the live hooks and answers the list to write
   * (undefined: nothing to write) and a result. In one process the keyed queue orders them; with several
   * replicas the write is a compare-and-set on what was read, tried again on a conflict, so a registration
   * on one replica and a delivery's forget on another never lose each other's write.
   */
  const update = <T>(feed: string, change: (live: StoredHook[]) => { next?: StoredHook[]; result: T }): Promise<T> =>
    serialized(feed, async () => {
      for (let attempt = 1; ; attempt += 1) {
        const stamped = await hooks.getStamped<unknown>(feed);
        const { next, result } = change(liveOf(stamped?.value));
        if (next === undefined) return result;
        if (!store.shared) {
          if (next.length === 0) await hooks.delete(feed);
          else await hooks.set(feed, next, entryTtlMs(next, clock.now()));
          return result;
        }
        const ttl = next.length === 0 ? 1_000 : entryTtlMs(next, clock.now());
        if (await hooks.setIfStamp(feed, stamped?.stamp, next, ttl) !== undefined) return result;
        if (attempt >= maxWriteAttempts) throw new Error(`hooks of a feed changed under ${attempt} writes in a row`);
      }
    });

  const storeFailed = (feed: string | undefined, err: unknown) => {
    metrics.delivered('store_error');
    logger.error({ hook: feed === undefined ? {} : { feed: redactUrl(feed) }, err }, 'hook store failed');
  };

  const refuse = (feed: string, reason: HookRefusal, host?: string, err?: unknown): HookRegistration => {
    metrics.refused(reason);
    // The host only: a hook URL's path and query may carry the consumer's secret.
    const line = { hook: { feed: redactUrl(feed), reason, host }, err };
    if (err !== undefined) logger.error(line, 'hook registration failed');
    else if (reason === 'disabled') logger.debug(line, 'hook refused');
    else logger.info(line, 'hook refused');
    return { ok: false, reason };
  };

  const save = async (feed: string, url: URL, address: string, family: 4 | 6, seen: string | undefined):
  Promise<HookRegistration> => {
    const href = url.href;
    const expiresAt = clock.now() + hookTtlMs;
    const hook: StoredHook = { url: href, address, family, expiresAt, ...(seen === undefined ? {} : { seen }) };
    const outcome = await update(feed, (live) => {
      const index = live.findIndex((h) => h.url === href);
      if (index === -1 && live.length >= maxPerFeed) return { result: 'full' as const };
      // A due hook stays due: its HEAD is owed for the change that made it due.
      const next = [...live];
      if (index === -1) next.push(hook);
      else next[index] = live[index]?.due === true ? { ...hook, due: true } : hook;
      return { next, result: index === -1 ? 'added' as const : 'refreshed' as const };
    });
    if (outcome === 'full') return refuse(feed, 'feed-full', url.host);
    metrics.registered();
    logger.debug({ hook: { feed: redactUrl(feed), host: url.host, refreshed: outcome === 'refreshed' } }, 'hook registered');
    return { ok: true };
  };

  /** Marks the live hooks of `feed` due, in one write; the hooks to deliver. */
  const markDue = async (feed: string, tag: string | undefined): Promise<StoredHook[]> => {
    let due: StoredHook[] = [];
    try {
      return await update(feed, (live) => {
        // A subscriber whose GET already got this content has nothing to be told yet.
        const marked = live.map((h): StoredHook => (h.due === true || (tag !== undefined && h.seen === tag) ? h
          : { ...h, due: true }));
        due = marked.filter((h) => h.due === true);
        return { result: due, ...(marked.every((h, i) => h === live[i]) ? {} : { next: marked }) };
      });
    } catch (err) {
      storeFailed(feed, err);
      // Unread, the hooks cannot be marked: the change stays journaled and is fired again at the next start.
      // Read but not written: still delivered (a second HEAD on a later change is harmless; a lost one is not).
      if (due.length === 0) throw err;
      return due;
    }
  };

  /** Removes `url` from the feed's list if it is still due (after its HEAD was answered or refused). */
  const forget = async (feed: string, url: string): Promise<void> => {
    try {
      await update(feed, (live) => {
        const kept = live.filter((h) => !(h.url === url && h.due === true));
        return { result: undefined, ...(kept.length === live.length ? {} : { next: kept }) };
      });
    } catch (err) {
      // It stays due in the store: the next start() sends it again, a harmless second HEAD.
      storeFailed(feed, err);
    }
  };

  const enqueue = (feed: string, hook: StoredHook): 'queued' | 'held' | 'full' | 'closed' => {
    if (stopped) return 'closed';
    const added = queue.add({ feed, hook });
    if (added === 'full') {
      metrics.deferred();
      if (!deferring) {
        deferring = true;
        logger.warn({ hook: { maxQueued } }, 'hook deliveries deferred: queue full');
      }
    }
    return added;
  };

  /**
   * Queues every due hook in the store that the queue does not hold yet, until it is full (it
   * calls onRoom later, which scans again). One scan at a time; a request during one runs another
   * after it. An entry read just before its hook was forgotten can send that HEAD a second time:
   * harmless, and only after a full queue or a restart.
   */
  const rescan = (): Promise<number> => {
    if (scan !== undefined) {
      scanAgain = true;
      return scan;
    }
    const run = async (): Promise<number> => {
      let queued = 0;
      do {
        scanAgain = false;
        try {
          scanning: for await (const [feed, value] of hooks.entries<unknown>()) {
            if (stopped) break;
            if (!Array.isArray(value)) continue;
            for (const hook of value) {
              if (!isStoredHook(hook) || hook.due !== true) continue;
              const added = enqueue(feed, hook);
              if (added === 'queued') queued += 1;
              if (added === 'full' || added === 'closed') break scanning;
            }
          }
        } catch (err) {
          storeFailed(undefined, err);
        }
      } while (scanAgain && !stopped);
      return queued;
    };
    const current = run().finally(() => {
      scan = undefined;
    });
    scan = current;
    return current;
  };

  /** One attempt at one hook's HEAD; a number asks the queue for another attempt that much later. */
  const deliver = async (job: Job, attempt: number): Promise<number | undefined> => {
    const { feed, hook } = job;
    const where = { feed: redactUrl(feed), host: hostOf(hook.url) };
    try {
      if (store.shared && attempt === 1) {
        // Another replica is delivering it (SPEC "Several replicas": each hook fires once)…
        if (!(await claims.add(claimKey(feed, hook.url), owner, deliveryClaimMs))) return undefined;
        // …or delivered it between this replica's scan and its claim: then it is no longer due.
        if (!(await liveHooks(feed)).some((h) => h.url === hook.url && h.due === true)) {
          await claims.deleteIf(claimKey(feed, hook.url), owner).catch(() => false);
          return undefined;
        }
      }
      // The config may have changed since registration (SPEC "iCal Hooks": the address checked is
      // the address used), so the stored address is judged again by the policy in force now.
      if (!isAllowedAddress(hook.address, allowPrivateNetworks)) {
        metrics.refused('private-address');
        logger.info({ hook: { ...where, reason: 'private-address', stage: 'delivery' } }, 'hook refused');
        await forget(feed, hook.url);
        return undefined;
      }
      const result = await client.headPinned(hook.url, { address: hook.address, family: hook.family }, {
        deadlineMs: timeoutMs,
        headers: { 'user-agent': userAgent },
      });
      if (result.kind === 'failed' && result.error.code === 'SHUTTING_DOWN') {
        // Shutdown: not an answer, nor an attempt. The hook stays due for the next start().
        if (!stopped) logger.info({}, 'hook deliveries stopped: outbound client closed');
        stopped = true;
        return undefined;
      }
      const { outcome, status, errorCode: code, cause } = deliveryResult(result);
      const line = { ...where, outcome, status, code, cause, attempt };
      if (outcome === 'network_error' && attempt <= retryDelaysMs.length) {
        // Closing: no retry now, and not forgotten either: it stays due for the next start().
        if (stopped) return undefined;
        job.failure = { code, cause };
        return retryDelaysMs[attempt - 1];
      }
      metrics.delivered(outcome);
      if (outcome === 'ok') logger.debug({ hook: line }, 'hook delivered');
      else logger.info({ hook: line }, 'hook delivery failed');
      await forget(feed, hook.url);
      if (store.shared) await claims.deleteIf(claimKey(feed, hook.url), owner).catch(() => false);
      return undefined;
    } catch (err) {
      logger.error({ hook: where, err }, 'hook delivery crashed');
      return undefined;
    }
  };

  return {
    async register(feed, header, seen) {
      try {
        const parsed = parseHookHeader(header);
        if (parsed.ok === 'absent') return parsed;
        if (!enabled) return refuse(feed, 'disabled');
        if (parsed.ok === false) return refuse(feed, parsed.reason, parsed.host);
        const { url } = parsed;
        const target = await resolveTarget(url.hostname, {
          lookup, timeoutMs: lookupTimeoutMs, allowPrivateNetworks, clock,
        });
        if (!target.ok) return refuse(feed, target.reason, url.host);
        try {
          return await save(feed, url, target.address, target.family, seen);
        } catch (err) {
          return refuse(feed, 'store-error', url.host, err);
        }
      } catch (err) {
        return refuse(feed, 'malformed', undefined, err);
      }
    },

    fire(feed, tag) {
      if (!enabled) return Promise.resolve();
      const done = (async () => {
        try {
          const due = await markDue(feed, tag);
          for (const hook of due) enqueue(feed, hook);
        } catch (err) {
          logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook fire failed');
          throw err;
        }
      })();
      marking.add(done);
      void done.catch(() => undefined).finally(() => marking.delete(done));
      return done;
    },

    async list(feed) {
      try {
        const live = await liveHooks(feed);
        return live.map(({ url, expiresAt, due }) => ({ url: redactUrl(url), expiresAt, due: due === true }));
      } catch (err) {
        logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook store failed');
        return [];
      }
    },

    async start() {
      if (!enabled || stopped) return;
      const queued = await rescan();
      if (queued > 0) logger.info({ hook: { due: queued } }, 'hook deliveries resumed');
      // Several replicas: due hooks a dead one was delivering (its claims run out) are found by a later scan.
      const again = () => {
        rescanTimer = clock.setTimeout(() => {
          if (stopped) return;
          void rescan().finally(again);
        }, rescanIntervalMs);
      };
      if (store.shared && rescanTimer === undefined) again();
    },

    async close() {
      stopped = true;
      clock.clearTimeout(rescanTimer);
      // Marks under way finish first, so they are in the store before it closes.
      await Promise.all(marking);
      await queue.close();
      await scan;
    },

    async idle() {
      for (;;) {
        await queue.idle();
        const current = scan;
        if (current !== undefined) await current;
        else if (queue.size === 0 && marking.size === 0) return;
        else await Promise.all(marking);
      }
    },
  };
}
