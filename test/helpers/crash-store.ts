// A Store that "crashes" at a chosen write: the first writes pass to the store underneath, every later one
// never completes and never lands. What the store underneath holds then is what a process killed right
// after that many writes would have left; a second app opened on it plays the restarted process.
import type { Store, StoreNamespace } from '../../src/store/store.ts';

/** One write that reached the store underneath. */
export type StoreWrite = { namespace: string; op: 'set' | 'delete' | 'clear' | 'add' | 'increment' | 'queue' };

/** The crashing store and its controls. */
export type CrashStore = {
  /** Give this to the app that is to crash; closing it leaves the store underneath open. */
  readonly store: Store;
  /** The writes that passed, in order. */
  readonly writes: StoreWrite[];
  /** Lets `count` more writes pass, then crashes on the next one (Infinity: never). */
  crashAfter(count: number): void;
  /** Crashes on the write after the next one of `op` to `namespace`. */
  crashAfterNext(namespace: string, op: StoreWrite['op']): void;
  /** Resolves with performance.now() at the first write refused. */
  readonly crashed: Promise<number>;
};

/**
 * Wraps `inner`; nothing crashes until crashAfter() or crashAfterNext() says when. A refused write never
 * settles, as in a killed process; with `reject`, it rejects instead, so the app under test goes on
 * answering (the code after the crash point runs, but writes nothing).
 */
export function createCrashStore(inner: Store, options: { reject?: boolean } = {}): CrashStore {
  const writes: StoreWrite[] = [];
  let budget = Infinity;
  let trigger: StoreWrite | undefined;
  const { promise: crashed, resolve } = Promise.withResolvers<number>();
  let isCrashed = false;
  const never = new Promise<never>(() => {});
  const refused = () => (options.reject ? Promise.reject(new Error('process killed')) : never);

  function write<T>(namespace: string, op: StoreWrite['op'], run: () => Promise<T>): Promise<T> {
    if (isCrashed || budget <= 0) {
      if (!isCrashed) {
        isCrashed = true;
        resolve(performance.now());
      }
      return refused();
    }
    budget -= 1;
    writes.push({ namespace, op });
    if (trigger?.namespace === namespace && trigger.op === op) {
      budget = 0;
      trigger = undefined;
    }
    return run();
  }

  const store: Store = {
    kind: inner.kind,
    shared: inner.shared,
    namespace(name) {
      const ns = inner.namespace(name);
      const wrapped: StoreNamespace = {
        get: (key) => ns.get(key),
        set: (key, value, ttlMs) => write(name, 'set', () => ns.set(key, value, ttlMs)),
        delete: (key) => write(name, 'delete', () => ns.delete(key)),
        entries: () => ns.entries(),
        clear: () => write(name, 'clear', () => ns.clear()),
        add: (key, value, ttlMs) => write(name, 'add', () => ns.add(key, value, ttlMs)),
        deleteIf: (key, value) => write(name, 'delete', () => ns.deleteIf(key, value)),
        increment: (key, by, ttlMs) => write(name, 'increment', () => ns.increment(key, by, ttlMs)),
        getStamped: (key) => ns.getStamped(key),
        setIfStamp: (key, expected, value, ttlMs) => write(name, 'set', () => ns.setIfStamp(key, expected, value, ttlMs)),
      };
      return wrapped;
    },
    queue(name) {
      const q = inner.queue(name);
      const queued = <T>(run: () => Promise<T>) => write(name, 'queue', run);
      return {
        schedule: (member, at) => queued(() => q.schedule(member, at)),
        hasten: (member, at) => queued(() => q.hasten(member, at)),
        claim: (now, leaseMs, limit) => queued(() => q.claim(now, leaseMs, limit)),
        complete: (claim) => queued(() => q.complete(claim)),
        retry: (claim, at) => queued(() => q.retry(claim, at)),
        remove: (member) => queued(() => q.remove(member)),
        next: () => q.next(),
        size: () => q.size(),
        list: (limit) => q.list(limit),
      };
    },
    ping: () => inner.ping(),
    async close() {},
  };

  return {
    store,
    writes,
    crashAfter(count) {
      budget = count;
    },
    crashAfterNext(namespace, op) {
      trigger = { namespace, op };
    },
    crashed,
  };
}
