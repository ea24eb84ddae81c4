// Time as a dependency: the clock *and* its timers, so retention, debounce, retries, deadlines and
// the watch are tested by moving time forward, never by sleeping.

/** A pending timer; opaque, only good for clearTimeout of the clock that made it. */
export type Timer = { readonly cancelled?: boolean } & object;

/** The source of "now" and of timers for everything that stores, compares or waits on times. */
export type Clock = {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once, `ms` from now. Timers never keep the process alive on their own. */
  setTimeout(callback: () => void, ms: number): Timer;
  /** Cancels a timer of this clock; undefined and fired timers are ignored. */
  clearTimeout(timer: Timer | undefined): void;
};

// Node refuses delays past 2^31 − 1 ms (it fires them at once instead): longer waits are chained.
const maxDelayMs = 2 ** 31 - 1;

type SystemTimer = Timer & { handle: NodeJS.Timeout | undefined };

/** The wall clock, with Node's timers (unref'd). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const timer: SystemTimer = { handle: undefined };
    const dueAt = Date.now() + Math.max(0, ms);
    const arm = (delay: number) => {
      timer.handle = setTimeout(() => {
        const left = dueAt - Date.now();
        if (left > 0) arm(left);
        else callback();
      }, Math.min(delay, maxDelayMs));
      timer.handle.unref();
    };
    arm(Math.max(0, ms));
    return timer;
  },
  clearTimeout(timer) {
    if (timer !== undefined) clearTimeout((timer as SystemTimer).handle);
  },
};
