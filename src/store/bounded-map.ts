// The bounded Map behind the memory store (house rule: every cache has a bound). It stays a real
// `Map` subclass because keyv only builds an iterator for stores that are `instanceof Map`.

/** How many entries a memory store holds when the caller names no bound. */
export const defaultMaxEntries = 100_000;

// Map.prototype.delete, unhooked: eviction must not report the evicted key back to its budget.
const deleteUnrecorded = Map.prototype.delete;

/**
 * A cap on the entries of every BoundedMap sharing it, so one bound covers all the namespaces
 * of a memory store. Past `maxEntries`, the least recently written entry of any of the maps is
 * evicted; reads do not refresh an entry, since the store is a record of state, not a read cache.
 */
export class EntryBudget {
  /** The most entries the maps sharing this budget hold together. */
  readonly maxEntries: number;
  // Oldest write first (a Map iterates in insertion order); slot = `${mapId}\0${key}`.
  readonly #writes = new Map<string, { map: Map<string, unknown>; key: string }>();
  #nextMapId = 0;

  constructor(maxEntries: number = defaultMaxEntries) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
  }

  /** How many entries the maps sharing this budget hold together. */
  get size(): number {
    return this.#writes.size;
  }

  /** A fresh id for a map joining this budget. */
  join(): number {
    this.#nextMapId += 1;
    return this.#nextMapId;
  }

  /** Records `key` of `map` as the newest write, then evicts the oldest entries past the bound. */
  wrote(map: Map<string, unknown>, mapId: number, key: string): void {
    const slot = `${mapId}\0${key}`;
    this.#writes.delete(slot);
    this.#writes.set(slot, { map, key });
    while (this.#writes.size > this.maxEntries) {
      const oldest = this.#writes.entries().next();
      if (oldest.done) return;
      const [oldestSlot, entry] = oldest.value;
      this.#writes.delete(oldestSlot);
      deleteUnrecorded.call(entry.map, entry.key);
    }
  }

  /** Forgets `key` of a map: it was deleted. */
  forgot(mapId: number, key: string): void {
    this.#writes.delete(`${mapId}\0${key}`);
  }
}

/**
 * A string-keyed Map that keeps at most `budget.maxEntries` entries (together with every other
 * map on the same budget), evicting the least recently written entry first. Default bound:
 * 100,000 entries.
 */
export class BoundedMap<V> extends Map<string, V> {
  /** keyv writes the namespace of its instance here; declared so that write is typed. */
  namespace?: string;
  readonly #budget: EntryBudget;
  readonly #id: number;

  constructor(budget: EntryBudget = new EntryBudget()) {
    super();
    this.#budget = budget;
    this.#id = budget.join();
  }

  override set(key: string, value: V): this {
    super.set(key, value);
    this.#budget.wrote(this, this.#id, key);
    return this;
  }

  override delete(key: string): boolean {
    this.#budget.forgot(this.#id, key);
    return super.delete(key);
  }

  override clear(): void {
    for (const key of super.keys()) this.#budget.forgot(this.#id, key);
    super.clear();
  }
}
