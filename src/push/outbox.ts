// The outbox's store operations (SPEC "Push" → "Outbound", "Several replicas"): one entry per (listing,
// peer URL) with what was queued and tried, and a due queue of the same keys that decides who sends
// what when. A replica takes due entries with a lease; one killed mid-delivery leaves its entries to be
// taken again once the lease runs out, so another replica sends them.
import { createHash } from 'node:crypto';
import type { Claim, DueQueue, Store, StoreNamespace } from '../store/store.ts';

/** The store namespace (and due queue) of the outbox. */
export const outboxNamespace = 'push_outbox';

/** One outbox entry as stored. */
export type OutboxEntry = {
  listing: string;
  name: string;
  url: string;
  reason: string;
  attempts: number;
  /** When the next attempt is planned (ms); the due queue decides, this is what status shows. */
  dueAt: number;
  firstQueuedAt: number;
  /** The latest notify() that joined this entry: a newer change is retried for retryFor from then. */
  lastQueuedAt?: number;
  lastError?: string;
};

/** The outbox over one store. */
export type Outbox = {
  /** The entry under `key`; undefined when absent or unreadable (an unreadable one is removed). */
  get(key: string): Promise<OutboxEntry | undefined>;
  /** Writes the entry (not its schedule). */
  put(key: string, entry: OutboxEntry): Promise<void>;
  /** Makes `key` due at `at`, unless it is scheduled (or claimed) already. */
  schedule(key: string, at: number): Promise<void>;
  /** Makes `key` due at `at` unless it is due earlier, leases included: for a single process's restart. */
  hasten(key: string, at: number): Promise<void>;
  /** Takes up to `limit` due keys, each leased for `leaseMs`. */
  claim(now: number, leaseMs: number, limit: number): Promise<Claim[]>;
  /** Ends a claim whose notification is done: true when nobody scheduled it again meanwhile. */
  complete(claim: Claim): Promise<boolean>;
  /** Moves a claim's next attempt to `at`: false when it was scheduled again meanwhile (sooner). */
  retry(claim: Claim, at: number): Promise<boolean>;
  /** Removes the entry and its schedule. */
  forget(key: string): Promise<void>;
  /** Removes the entry only while it is still `entry` (nobody joined it since it was read): true when removed. */
  forgetIf(key: string, entry: OutboxEntry): Promise<boolean>;
  /** The soonest due time, leases included. */
  next(): Promise<number | undefined>;
  /** Entries scheduled (in flight included). */
  size(): Promise<number>;
  /** Every stored entry (for status and for a restart of a single process). */
  entries(): AsyncIterable<[key: string, entry: OutboxEntry]>;
};

// Keys are a hash so the store never holds the peer URL (and its secret) in a key, and so two
// listings sharing a peer URL stay distinct.
export function outboxKey(listing: string, url: string): string {
  return createHash('sha256').update(listing).update('\u0000').update(url).digest('base64url');
}

function isOutboxEntry(value: unknown): value is OutboxEntry {
  const v = value as Partial<OutboxEntry> | null;
  return (
    typeof v === 'object' && v !== null &&
    typeof v.listing === 'string' && typeof v.name === 'string' && typeof v.url === 'string' &&
    typeof v.attempts === 'number' && typeof v.dueAt === 'number' && typeof v.firstQueuedAt === 'number'
  );
}

/** The outbox in `store`; `onUnreadable` hears of each entry removed because it could not be read. */
export function createOutbox(store: Store, onUnreadable: (key: string) => void): Outbox {
  const items: StoreNamespace = store.namespace(outboxNamespace);
  const queue: DueQueue = store.queue(outboxNamespace);

  async function forget(key: string): Promise<void> {
    await items.delete(key);
    await queue.remove(key);
  }

  return {
    async get(key) {
      const value = await items.get<unknown>(key);
      if (value === undefined) return undefined;
      if (!isOutboxEntry(value)) {
        onUnreadable(key);
        await forget(key);
        return undefined;
      }
      return { ...value, reason: value.reason ?? 'resumed' };
    },
    put: (key, entry) => items.set(key, entry),
    schedule: (key, at) => queue.schedule(key, at),
    hasten: (key, at) => queue.hasten(key, at),
    claim: (now, leaseMs, limit) => queue.claim(now, leaseMs, limit),
    complete: (claim) => queue.complete(claim),
    retry: (claim, at) => queue.retry(claim, at),
    forget,
    forgetIf: (key, entry) => items.deleteIf(key, entry),
    next: () => queue.next(),
    size: () => queue.size(),
    async* entries() {
      for await (const [key, value] of items.entries<unknown>()) {
        if (isOutboxEntry(value)) yield [key, { ...value, reason: value.reason ?? 'resumed' }];
        else {
          onUnreadable(key);
          await forget(key);
        }
      }
    },
  };
}
