// Turns the `store` setting into a Store: `memory` (bounded, lost on exit), a file path for the durable
// embedded store, or a `redis://` / `rediss://` URL for the store several replicas share.
import { type Clock, systemClock } from '../clock.ts';
import { IcalpushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { BoundedMap, defaultMaxEntries, EntryBudget } from './bounded-map.ts';
import { createKeyvStore } from './keyv-store.ts';
import { openRedisStore } from './redis-store.ts';
import { openSqliteAdapter } from './sqlite-adapter.ts';
import type { Store } from './store.ts';

/** Options of openStore; production uses the defaults. */
export type OpenStoreOptions = {
  /** Decides TTL expiry (and the sqlite sweep); the system clock by default. */
  clock?: Clock;
  /** Bound on the entries of the memory store, all namespaces together; 100,000 by default. */
  maxMemoryEntries?: number;
  /** Where a shared store reports its connection lost and restored. */
  logger?: Logger;
};

/**
 * Opens the store named by `spec`: `memory`, or the path of an SQLite file (already resolved
 * by the config loader; created with its directory when missing), or a Redis URL. Rejects with
 * STORE_UNAVAILABLE when the file cannot be opened and for other URL schemes. A Redis store opens at once,
 * reachable or not: its calls reject until Redis answers (SPEC "Several replicas": degraded mode).
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<Store> {
  const { clock = systemClock, maxMemoryEntries = defaultMaxEntries } = options;
  if (spec === 'memory') {
    const budget = new EntryBudget(maxMemoryEntries);
    return createKeyvStore({
      kind: 'memory',
      clock,
      backend: { storeFor: () => new BoundedMap<string>(budget), close: () => {} },
    });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    return await openRedisStore(spec, { clock, ...(options.logger ? { logger: options.logger } : {}) });
  }
  if (scheme !== undefined) {
    throw new IcalpushError(
      'STORE_UNAVAILABLE',
      `unsupported store URL scheme ${scheme}: use \`memory\`, a file path or a redis:// URL`,
    );
  }
  const sqlite = openSqliteAdapter(spec, { clock });
  return createKeyvStore({
    kind: 'sqlite',
    clock,
    backend: { storeFor: () => sqlite.namespaceAdapter(), close: () => sqlite.close() },
  });
}
