// The narrow store port: namespaced keys, JSON values, optional TTLs. Every piece of state
// that must survive a restart (snapshots, tokens, hooks, pending notifications) goes through it.

/** One namespace of the store: keys here never collide with another namespace's. */
export type StoreNamespace = {
  /** The value under `key`, or undefined when absent or expired. */
  get<T>(key: string): Promise<T | undefined>;
  /** Stores a JSON-serializable value; with `ttlMs` it expires after that many milliseconds. */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /** Removes `key`; true when something was removed. */
  delete(key: string): Promise<boolean>;
  /** Every live entry of this namespace, in no particular order. */
  entries<T>(): AsyncIterable<[key: string, value: T]>;
  /** Removes every entry of this namespace (and only this namespace). */
  clear(): Promise<void>;
};

/** A store backend behind the port. */
export type Store = {
  /** `memory`, `sqlite` or `redis`: for logs and readiness answers. */
  readonly kind: string;
  /** Opens (or reuses) the namespace `name`: letters, digits, `-` and `_`. */
  namespace(name: string): StoreNamespace;
  /** Resolves when the backend answers a round trip; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Flushes pending writes and releases the backend; later calls reject. */
  close(): Promise<void>;
};
