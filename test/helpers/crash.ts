// A crash as the store sees it: from some instant on, nothing more is written (a kill -9 lets no write
// through), while the test keeps the data written before it for the next process to open.
import type { Store, StoreNamespace } from '../../src/store/store.ts';

/** A store that stops writing (as a killed process does) once `crashWhen` accepts a write it made. */
export function crashingStore(real: Store, crashWhen: (namespace: string, value: unknown) => boolean): Store {
  let crashed = false;
  const dead = () => Promise.reject(new Error('process killed'));
  return {
    kind: real.kind,
    ping: () => real.ping(),
    close: () => Promise.resolve(),
    namespace(name) {
      const inner = real.namespace(name);
      const ns: StoreNamespace = {
        get: (key) => inner.get(key),
        entries: () => inner.entries(),
        async set(key, value, ttlMs) {
          if (crashed) return dead();
          await inner.set(key, value, ttlMs);
          if (crashWhen(name, value)) crashed = true;
        },
        delete: (key) => (crashed ? dead() : inner.delete(key)),
        clear: () => (crashed ? dead() : inner.clear()),
      };
      return ns;
    },
  };
}
