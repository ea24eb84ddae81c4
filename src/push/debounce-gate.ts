// The inbound debounce across the fleet (SPEC "Several replicas": one run, plus one trailing, per listing
// per window across all replicas). A window is a lease in the shared store holding its start: the HEAD that
// takes it runs at once. A HEAD inside a window marks a trailing run for that window (the mark holds the
// window's start) and waits for the window's end; then every replica that waited tries to take that mark, and
// the one whose compare-and-delete succeeds runs it and opens the next window. A replica late for a window
// (a slow timer, a skewed clock) finds the mark of the next one and leaves it alone. With a store of one
// process, receive.ts keeps its own timers instead.
import type { Clock } from '../clock.ts';
import type { Store, StoreNamespace } from '../store/store.ts';

/** What an inbound HEAD comes to: run now, or the window (its start) whose end to wait for, at `at`. */
export type GateEntry = { run: true } | { run: false; window: number; at: number };

/** The shared debounce. */
export type DebounceGate = {
  /** A HEAD for `listing`: run now, or wait for the window's end (`at`, ms) and try takeTrailing. */
  enter(listing: string): Promise<GateEntry>;
  /** At the end of `window`: true for exactly one replica when its trailing run is owed; it opens the next window. */
  takeTrailing(listing: string, window: number): Promise<boolean>;
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
      const stored = await windows.get<number>(windowKey(listing));
      const window = typeof stored === 'number' ? stored : now;
      // Every HEAD of one window writes the same mark; a mark of an earlier window not taken is replaced.
      await windows.set(trailingKey(listing), window, markMs);
      return { run: false, window, at: window + debounceMs };
    },
    async takeTrailing(listing, window) {
      if (!(await windows.deleteIf(trailingKey(listing), window))) return false;
      await windows.set(windowKey(listing), clock.now(), debounceMs);
      return true;
    },
  };
}
