// The narrow store port: namespaced keys, JSON values, optional TTLs, and the few atomic operations that
// coordinating several replicas needs (SPEC "Several replicas"): set-if-absent with expiry (leases),
// compare-and-delete (releasing one's own lease), increment, compare-and-set on a stamp (a history's
// version never forks), and due-time queues (the outbox's claims). Every piece of state that must survive
// a restart, or be seen by every replica, goes through it. Every time it compares (expiry, due times) is
// the caller's clock, so one backend behaves as another under a fake clock too.

/** A value and the stamp of the write that put it there (see `setIfStamp`). */
export type Stamped<T> = { value: T; stamp: string };

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
  /** Stores `value` only when `key` is absent or expired, atomically: true when this call stored it. */
  add<T>(key: string, value: T, ttlMs?: number): Promise<boolean>;
  /** Removes `key` only when it holds `value` (equal as JSON), atomically: true when removed. */
  deleteIf<T>(key: string, value: T): Promise<boolean>;
  /**
   * Adds `by` (an integer, 1 by default) to the integer under `key`, 0 when absent, atomically; the sum.
   * With `ttlMs` the entry expires that long from now; without, it never expires.
   */
  increment(key: string, by?: number, ttlMs?: number): Promise<number>;
  /** The value under `key` with its stamp: "" for a value written by `set`. */
  getStamped<T>(key: string): Promise<Stamped<T> | undefined>;
  /**
   * Stores `value` only when the entry's stamp is still `expected` (undefined: only when absent),
   * atomically. The new stamp, unique to this write; undefined when the entry had changed (nothing is
   * written: the caller re-reads, never overwrites).
   */
  setIfStamp<T>(key: string, expected: string | undefined, value: T, ttlMs?: number): Promise<string | undefined>;
};

/** A member of a due queue taken by `claim`: `token` is the due time the claim leased it until. */
export type Claim = { member: string; token: number };

/**
 * A set of members, each with a due time (ms): the outbox's schedule. Claiming leases a due member, so a
 * replica killed while it works on one leaves it to be claimed again once the lease runs out.
 */
export type DueQueue = {
  /** Makes `member` due at `at`, unless it is in the queue already (waiting, or claimed: due at its lease end). */
  schedule(member: string, at: number): Promise<void>;
  /** Makes `member` due at `at`, unless it is due earlier; a claim's lease included (only for a single process
   * resuming what its previous run left claimed). */
  hasten(member: string, at: number): Promise<void>;
  /** Takes up to `limit` members due at `now`, soonest first, each now due at `now + leaseMs` (the token). */
  claim(now: number, leaseMs: number, limit: number): Promise<Claim[]>;
  /** Removes a claimed member, only when its due time is still the claim's token: true when removed. */
  complete(claim: Claim): Promise<boolean>;
  /** Makes a claimed member due at `at`, only when its due time is still the claim's token: true when moved. */
  retry(claim: Claim, at: number): Promise<boolean>;
  /** Removes `member` whatever its due time. */
  remove(member: string): Promise<void>;
  /** The earliest due time, or undefined when the queue is empty. */
  next(): Promise<number | undefined>;
  /** The number of members. */
  size(): Promise<number>;
  /** Up to `limit` members with their due times, soonest first (for status). */
  list(limit: number): Promise<[member: string, at: number][]>;
};

/** A store backend behind the port. */
export type Store = {
  /** `memory`, `sqlite` or `redis`: for logs and readiness answers. */
  readonly kind: string;
  /**
   * True when other processes may share this store (Redis): what a replica keeps in memory may be behind
   * it, and the atomic operations are the only coordination between replicas.
   */
  readonly shared: boolean;
  /** Opens (or reuses) the namespace `name`: letters, digits, `-` and `_`. */
  namespace(name: string): StoreNamespace;
  /** Opens (or reuses) the due queue `name` (same alphabet; apart from the namespaces). */
  queue(name: string): DueQueue;
  /** Resolves when the backend answers a round trip; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Flushes pending writes and releases the backend; later calls reject. */
  close(): Promise<void>;
};
