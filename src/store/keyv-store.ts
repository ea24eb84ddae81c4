// The Store port over keyv, the one file that knows keyv: one Keyv instance per namespace,
// values JSON-serialized by keyv, expiry decided by the injected clock, and every backend failure
// surfaced as STORE_UNAVAILABLE (keyv swallows errors unless told otherwise). These backends belong to
// one process, so the atomic operations are atomic in-process: each runs under a lock of its key.
import { randomUUID } from 'node:crypto';
import Keyv, { type DeserializedData } from 'keyv';
import { type Clock, systemClock } from '../clock.ts';
import { hasCode, IcalpushError } from '../errors.ts';
import { createKeyedQueue } from '../util/keyed-queue.ts';
import { createLocalDueQueue } from './local-due-queue.ts';
import { checkTtl, newStamp, oncePerName } from './port-rules.ts';
import type { DueQueue, Store, StoreNamespace } from './store.ts';

/** What a backend hands createKeyvStore: a keyv store object per namespace, and its release. */
export type KeyvBackend = {
  /**
   * A fresh keyv store (a `Map` or a storage adapter) for one namespace. Never share one between
   * namespaces: keyv writes its namespace onto the store object, and `Map#clear` clears it all.
   */
  storeFor(namespace: string): object;
  /** Releases the backend, after every namespace's Keyv has disconnected. */
  close(): void | Promise<void>;
};

/** How createKeyvStore is set up. */
export type KeyvStoreOptions = {
  /** `memory`, `sqlite`, …: reported by `Store#kind`. */
  kind: string;
  backend: KeyvBackend;
  /** Decides TTL expiry; the backend must be given the same clock. */
  clock?: Clock;
};

// Outside that alphabet, so the readiness probe, the stamps and the queues never touch a caller's entries.
const pingNamespace = '~ping';
const stampsOf = (name: string) => `~stamp-${name}`;
const queueOf = (name: string) => `~due-${name}`;

/** A Store over keyv and `options.backend`. */
export function createKeyvStore(options: KeyvStoreOptions): Store {
  const { kind, backend, clock = systemClock } = options;
  const codec = createCodec(clock);
  const instances: Keyv[] = [];
  // The atomic operations of one key run one after another: in one process, that is atomic.
  const locked = createKeyedQueue();
  let closed = false;

  async function guard<T>(action: string, run: () => Promise<T>): Promise<T> {
    if (closed) throw new IcalpushError('STORE_UNAVAILABLE', `${kind} store is closed`);
    try {
      return await run();
    } catch (err) {
      throw wrap(err, action);
    }
  }

  function wrap(err: unknown, action: string): unknown {
    if (hasCode(err, 'STORE_UNAVAILABLE') || hasCode(err, 'INTERNAL_ERROR')) return err;
    const reason = err instanceof Error ? err.message : String(err);
    return new IcalpushError('STORE_UNAVAILABLE', `${kind} store: ${action} failed: ${reason}`, {
      cause: err,
    });
  }

  function openKeyv(name: string): Keyv {
    const keyv = new Keyv({
      store: backend.storeFor(name),
      namespace: name,
      serialize: codec.serialize,
      deserialize: codec.deserialize,
      // keyv's defaults swallow errors: a failed get reads as a miss, a failed set as `false`.
      emitErrors: false,
      throwOnErrors: true,
    });
    instances.push(keyv);
    return keyv;
  }

  function createNamespace(name: string): StoreNamespace {
    const keyv = openKeyv(name);
    const iterate = keyv.iterator;
    if (iterate === undefined) {
      throw new IcalpushError('INTERNAL_ERROR', `keyv cannot iterate the ${kind} store`);
    }
    // keyv leaves a key that already starts with `${name}:` unprefixed, so a caller's key
    // `feeds:x` in namespace `feeds` would land on `x`. Prefixing ourselves, always, keeps
    // every key distinct; keyv's iterator strips exactly one prefix back off.
    const prefix = `${name}:`;
    // Stamps live beside the values, only for entries written by setIfStamp.
    const stamps = openKeyv(stampsOf(name));
    const read = async <T>(key: string) => (await keyv.get(prefix + key)) as T | undefined;
    const write = async (key: string, value: unknown, ttlMs: number | undefined) => {
      checkTtl(ttlMs);
      if (!(await keyv.set(prefix + key, value, ttlMs))) throw new Error('write refused');
    };
    // Only a namespace that was ever stamped in this process pays for forgetting stamps on plain writes (a key
    // written by setIfStamp is only written that way, so one stamped before a restart is never written plainly).
    let stamped = false;
    const forgetStamp = async (key: string) => {
      if (stamped) await stamps.delete(prefix + key);
    };
    const atomically = <T>(action: string, key: string, run: () => Promise<T>) =>
      guard(`${action} in ${name}`, () => locked(`${name}\u0000${key}`, run));
    return {
      get: <T>(key: string) => guard(`get in ${name}`, () => read<T>(key)),
      set: (key, value, ttlMs) =>
        guard(`set in ${name}`, async () => {
          await write(key, value, ttlMs);
          await forgetStamp(key);
        }),
      delete: (key) => guard(`delete in ${name}`, async () => {
        const removed = await keyv.delete(prefix + key);
        await forgetStamp(key);
        return removed;
      }),
      clear: () => guard(`clear of ${name}`, async () => {
        await keyv.clear();
        if (stamped) await stamps.clear();
      }),
      add: (key, value, ttlMs) => atomically('add', key, async () => {
        checkTtl(ttlMs);
        if ((await read(key)) !== undefined) return false;
        await write(key, value, ttlMs);
        await forgetStamp(key);
        return true;
      }),
      deleteIf: (key, value) => atomically('deleteIf', key, async () => {
        const current = await read(key);
        if (current === undefined || JSON.stringify(current) !== JSON.stringify(value)) return false;
        await keyv.delete(prefix + key);
        await forgetStamp(key);
        return true;
      }),
      increment: (key, by = 1, ttlMs) => atomically('increment', key, async () => {
        if (!Number.isSafeInteger(by)) throw new IcalpushError('INTERNAL_ERROR', `increment by a non-integer: ${by}`);
        checkTtl(ttlMs);
        const current = await read<unknown>(key);
        if (current !== undefined && !Number.isSafeInteger(current)) {
          throw new IcalpushError('INTERNAL_ERROR', `increment of a value that is not an integer in ${name}`);
        }
        const sum = ((current as number | undefined) ?? 0) + by;
        await write(key, sum, ttlMs);
        await forgetStamp(key);
        return sum;
      }),
      getStamped: <T>(key: string) => guard(`getStamped in ${name}`, async () => {
        stamped = true;
        const value = await read<T>(key);
        if (value === undefined) return undefined;
        return { value, stamp: ((await stamps.get(prefix + key)) as string | undefined) ?? '' };
      }),
      setIfStamp: (key, expected, value, ttlMs) => atomically('setIfStamp', key, async () => {
        stamped = true;
        checkTtl(ttlMs);
        const current = await read(key);
        const stamp = current === undefined ? undefined
          : ((await stamps.get(prefix + key)) as string | undefined) ?? '';
        if (stamp !== expected) return undefined;
        const next = newStamp();
        // The stamp first: a crash between the two leaves a stamp no reader knows, so the next
        // setIfStamp re-reads (a conflict), never a value with the stamp of the one before.
        if (!(await stamps.set(prefix + key, next, ttlMs))) throw new Error('write refused');
        await write(key, value, ttlMs);
        return next;
      }),
      async* entries<T>(): AsyncGenerator<[key: string, value: T]> {
        if (closed) throw new IcalpushError('STORE_UNAVAILABLE', `${kind} store is closed`);
        try {
          for await (const [key, value] of iterate(undefined)) yield [key as string, value as T];
        } catch (err) {
          throw wrap(err, `entries of ${name}`);
        }
      },
    };
  }

  function createQueue(name: string): DueQueue {
    const keyv = openKeyv(queueOf(name));
    const iterate = keyv.iterator;
    if (iterate === undefined) throw new IcalpushError('INTERNAL_ERROR', `keyv cannot iterate the ${kind} store`);
    const prefix = `${queueOf(name)}:`;
    return createLocalDueQueue({
      guard: (action, run) => guard(`${action} of queue ${name}`, run),
      async load() {
        const out: [string, number][] = [];
        for await (const [key, at] of iterate(undefined)) out.push([key as string, at as number]);
        return out;
      },
      async save(member, at) {
        if (!(await keyv.set(prefix + member, at))) throw new Error('write refused');
      },
      async remove(member) {
        await keyv.delete(prefix + member);
      },
    });
  }

  let probe: Keyv | undefined;

  return {
    kind,
    shared: false,
    queue: oncePerName('queue', createQueue),
    namespace: oncePerName('namespace', createNamespace),
    ping: () =>
      guard('ping', async () => {
        probe ??= openKeyv(pingNamespace);
        // A unique key per probe, so concurrent readiness checks cannot read each other's value.
        const key = `${pingNamespace}:${randomUUID()}`;
        await probe.set(key, key);
        const read = await probe.get(key);
        await probe.delete(key);
        if (read !== key) throw new Error('the probe read back a different value');
      }),
    async close() {
      if (closed) return;
      closed = true;
      try {
        for (const keyv of instances) await keyv.disconnect();
        await backend.close();
      } catch (err) {
        throw wrap(err, 'close');
      }
    },
  };
}

// keyv hands serialize `{ value, expires }` with `expires` from Date.now() and later compares
// what deserialize returns with Date.now(): it cannot take a clock. So expiry is converted to the
// injected clock on the way in (to within the millisecond Date.now() may tick between keyv's
// reading and ours, only for a clock other than the system one), and decided with that clock on
// the way out, handing keyv either no expiry or 0, long past.
function createCodec(clock: Clock) {
  const isSystemClock = clock === systemClock;
  return {
    serialize(data: DeserializedData<unknown>): string {
      let { expires } = data;
      if (typeof expires === 'number' && !isSystemClock) {
        expires = clock.now() + (expires - Date.now());
      }
      try {
        return JSON.stringify({ value: data.value, expires });
      } catch (err) {
        throw new IcalpushError('INTERNAL_ERROR', 'store value is not JSON-serializable', {
          cause: err,
        });
      }
    },
    deserialize<Value>(text: string): DeserializedData<Value> {
      const stored = JSON.parse(text) as { value?: Value; expires?: number | null };
      const isExpired = typeof stored.expires === 'number' && clock.now() > stored.expires;
      return { value: stored.value, expires: isExpired ? 0 : undefined };
    },
  };
}
