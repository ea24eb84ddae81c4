// iCal Hooks (SPEC "iCal Hooks", seeds/ical-hooks.md): one-shot X-ICALHOOKS-URL subscriptions
// per feed, kept in the store for 7 days, each fired with one HEAD on the feed's next change.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import type { Registry } from '../metrics/registry.ts';
import type { Store } from '../store/store.ts';
import { type HostLookup, resolveTarget, systemLookup } from './address-policy.ts';
import { sendHookHead } from './hook-delivery.ts';
import { createHookMetrics, type HookRefusal } from './hook-metrics.ts';
import { parseHookHeader } from './hook-url.ts';

export type { HookRefusal } from './hook-metrics.ts';

/** How long a subscription lives without being renewed (SPEC "iCal Hooks"). */
export const hookTtlMs = 7 * 24 * 60 * 60 * 1000;

/** Default per-HEAD timeout. */
export const defaultHookTimeoutMs = 5_000;

/** Default bound on the wait for the hook host's DNS answer during a feed GET. */
export const defaultLookupTimeoutMs = 2_000;

/** HEADs in flight at once for one fire. */
export const deliveryConcurrency = 16;

/** The store namespace holding subscriptions: one entry per feed, a list of hooks. */
export const hooksNamespace = 'hooks';

/** register()'s answer: stored (or refreshed), refused and why, or no header at all. */
export type HookRegistration = { ok: true } | { ok: false; reason: HookRefusal } | { ok: 'absent' };

/** The iCal Hooks subscriptions of every feed. */
export type Hooks = {
  /**
   * Registers the X-ICALHOOKS-URL value(s) of a feed GET for `feed` (an opaque store key).
   * Never throws; waits at most for the DNS lookup (bounded by `lookupTimeoutMs`) and the store.
   */
  register(feed: string, header: string | string[] | undefined): Promise<HookRegistration>;
  /**
   * The feed changed: every live hook of `feed` gets one HEAD (concurrently, bounded) and is
   * forgotten whether or not the HEAD succeeded. Resolves when all are done; never throws.
   */
  fire(feed: string): Promise<void>;
  /** Live hooks of a feed (for status), URLs with query values redacted. */
  list(feed: string): Promise<{ url: string; expiresAt: number }[]>;
};

/** Options for createHooks. */
export type HooksOptions = {
  store: Store;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  enabled: boolean;
  /** Lets hooks point at loopback, RFC 1918, link-local and unique-local addresses. */
  allowPrivateNetworks: boolean;
  maxPerFeed: number;
  /** The HEAD's User-Agent, e.g. `iPP/0.1 icalpush`. */
  userAgent: string;
  /** Per HEAD; 5 s by default. */
  timeoutMs?: number;
  /** Bound on the hook host's lookup at registration; 2 s by default. */
  lookupTimeoutMs?: number;
  /** Resolves hook hosts; `dns.promises.lookup` with `all` and `verbatim` by default. */
  lookup?: HostLookup;
};

/** One subscription as stored: the address is the one checked at registration. */
type StoredHook = { url: string; address: string; family: 4 | 6; expiresAt: number };

function isStoredHook(value: unknown): value is StoredHook {
  const hook = value as Partial<StoredHook> | null;
  return (
    typeof hook === 'object' &&
    hook !== null &&
    typeof hook.url === 'string' &&
    typeof hook.address === 'string' &&
    (hook.family === 4 || hook.family === 6) &&
    typeof hook.expiresAt === 'number'
  );
}

/**
 * Runs tasks for one key one after another, so a register and a fire of the same feed never
 * interleave their read-modify-write. Keys leave the map when their queue drains.
 */
function createKeyedQueue(): <T>(key: string, task: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>();
  return async (key, task) => {
    const previous = tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(() => {}, () => {});
    tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Creates the hooks module over `options.store`. */
export function createHooks(options: HooksOptions): Hooks {
  const {
    store, clock, logger, enabled, allowPrivateNetworks, maxPerFeed, userAgent,
    timeoutMs = defaultHookTimeoutMs,
    lookupTimeoutMs = defaultLookupTimeoutMs,
    lookup = systemLookup,
  } = options;
  if (!Number.isInteger(maxPerFeed) || maxPerFeed < 0) throw new Error('maxPerFeed must be a non-negative integer');
  if (!(timeoutMs > 0) || !(lookupTimeoutMs > 0)) throw new Error('hook timeouts must be positive');
  const hooks = store.namespace(hooksNamespace);
  const metrics = createHookMetrics(options.registry);
  const serialized = createKeyedQueue();

  const liveHooks = async (feed: string): Promise<StoredHook[]> => {
    const stored = await hooks.get<unknown>(feed);
    const now = clock.now();
    return Array.isArray(stored) ? stored.filter((h) => isStoredHook(h) && h.expiresAt > now) : [];
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

  const save = async (feed: string, url: URL, address: string, family: 4 | 6): Promise<HookRegistration> => {
    const href = url.href;
    return serialized(feed, async () => {
      const live = await liveHooks(feed);
      const expiresAt = clock.now() + hookTtlMs;
      const index = live.findIndex((h) => h.url === href);
      if (index === -1 && live.length >= maxPerFeed) return refuse(feed, 'feed-full', url.host);
      const hook: StoredHook = { url: href, address, family, expiresAt };
      if (index === -1) live.push(hook);
      else live[index] = hook;
      // Every hook in the list expires no later than the newest one, so the entry's TTL is its.
      await hooks.set(feed, live, hookTtlMs);
      metrics.registered();
      logger.debug({ hook: { feed: redactUrl(feed), host: url.host, refreshed: index !== -1 } }, 'hook registered');
      return { ok: true };
    });
  };

  const deliver = async (feed: string, hook: StoredHook): Promise<void> => {
    let host = '';
    try {
      host = new URL(hook.url).host;
    } catch {
      // A stored URL always parsed once; a damaged one fails below as a network error.
    }
    const result = await sendHookHead({ ...hook, userAgent, timeoutMs });
    metrics.delivered(result.outcome);
    const { outcome, status, errorCode: code } = result;
    const line = { hook: { feed: redactUrl(feed), host, outcome, status, code } };
    if (result.outcome === 'ok') logger.debug(line, 'hook delivered');
    else logger.info(line, 'hook delivery failed');
  };

  return {
    async register(feed, header) {
      try {
        const parsed = parseHookHeader(header);
        if (parsed.ok === 'absent') return parsed;
        if (!enabled) return refuse(feed, 'disabled');
        if (parsed.ok === false) return refuse(feed, parsed.reason, parsed.host);
        const { url } = parsed;
        const target = await resolveTarget(url.hostname, { lookup, timeoutMs: lookupTimeoutMs, allowPrivateNetworks });
        if (!target.ok) return refuse(feed, target.reason, url.host);
        try {
          return await save(feed, url, target.address, target.family);
        } catch (err) {
          return refuse(feed, 'store-error', url.host, err);
        }
      } catch (err) {
        return refuse(feed, 'malformed', undefined, err);
      }
    },

    async fire(feed) {
      if (!enabled) return;
      try {
        const due = await serialized(feed, async () => {
          let live: StoredHook[];
          try {
            live = await liveHooks(feed);
          } catch (err) {
            metrics.delivered('store_error');
            logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook store failed');
            return [];
          }
          if (live.length === 0) return live;
          try {
            await hooks.delete(feed);
          } catch (err) {
            // Still notify: a second HEAD on a later change is harmless, a lost one is not.
            metrics.delivered('store_error');
            logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook store failed');
          }
          return live;
        });
        await forEachBounded(due, deliveryConcurrency, (hook) => deliver(feed, hook));
      } catch (err) {
        logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook fire failed');
      }
    },

    async list(feed) {
      try {
        const live = await liveHooks(feed);
        return live.map(({ url, expiresAt }) => ({ url: redactUrl(url), expiresAt }));
      } catch (err) {
        logger.error({ hook: { feed: redactUrl(feed) }, err }, 'hook store failed');
        return [];
      }
    },
  };
}
