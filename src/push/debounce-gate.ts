// The inbound debounce across the fleet (SPEC "Several replicas": one run, plus one trailing, per listing
// per window across all replicas). A window is a lease in the shared store holding its start: the HEAD that
// takes it runs at once. A HEAD inside a window marks a trailing run (set-if-absent) and waits for the
// window's end; then every replica that waited tries to take the mark, and the one whose delete succeeds
// runs it and opens the next window. With a store of one process, receive.ts keeps its own timers instead.
import type { Clock } from '../clock.ts';
import type { Store, StoreNamespace } from '../store/store.ts';

/** What an inbound HEAD comes to. */
export type GateEntry = { run: true } | { run: false; at: number };

/** The shared debounce. */
export type DebounceGate = {
  /** A HEAD for `listing`: run now, or wait for the window's end (`at`, ms) and try takeTrailing. */
  enter(listing: string): Promise<GateEntry>;
  /** At a window's end: true for exactly one replica when a trailing run is owed; it opens the next window. */
  takeTrailing(listing: string): Promise<boolean>;
};

/** The store namespace of the debounce windows and trailing marks. */
export const debounceNamespace = 'push_debounce';

/** Creates the gate over a shared store. */
export function createDebounceGate(store: Store, clock: Clock, debounceMs: number): DebounceGate {
  const windows: StoreNamespace = store.namespace(debounceNamespace);
  const windowKey = (listing: string) => `window:${listing}`;
  const trailingKey = (listing: string) => `trailing:${listing}`;
  // A mark outlives its window a little, so the replicas waiting for it can take it.
  const markMs = debounceMs * 3;
  return {
    async enter(listing) {
      const now = clock.now();
      if (await windows.add(windowKey(listing), now, debounceMs)) return { run: true };
      await windows.add(trailingKey(listing), now, markMs);
      const start = await windows.get<number>(windowKey(listing));
      return { run: false, at: (typeof start === 'number' ? start : now) + debounceMs };
    },
    async takeTrailing(listing) {
      if (!(await windows.delete(trailingKey(listing)))) return false;
      await windows.set(windowKey(listing), clock.now(), debounceMs);
      return true;
    },
  };
}
