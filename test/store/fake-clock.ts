// A Clock that only moves when a test says so, for TTL, sweep, retry, debounce and deadline tests
// without sleeping: `advance` moves time and fires, in due order, every timer that came due.
import type { Clock, Timer } from '../../src/clock.ts';

/** A Clock starting at `startMs` that `advance` moves forward. */
export type FakeClock = Clock & {
  /** Moves time by `ms`, firing each timer due by then at its own due time, in order. */
  advance(ms: number): void;
  /** Timers set and not yet fired or cleared. */
  pending(): number;
  /** The due time of the soonest pending timer, if any. */
  nextDueAt(): number | undefined;
  /**
   * Resolves once a timer due at `at` exactly is pending: for code that arms its timer after work the
   * test cannot await (a scheduler re-arming once a store write is done), so the test advances only then.
   */
  whenTimerAt(at: number): Promise<void>;
};

type FakeTimer = Timer & { dueAt: number; seq: number; callback: () => void; done: boolean };

/** A FakeClock at `startMs` (an arbitrary fixed instant by default). */
export function createFakeClock(startMs = Date.UTC(2025, 0, 1)): FakeClock {
  let nowMs = startMs;
  let seq = 0;
  const timers = new Set<FakeTimer>();
  const waiters = new Set<{ at: number; resolve: () => void }>();
  const hasTimerAt = (at: number) => {
    for (const timer of timers) if (timer.dueAt === at) return true;
    return false;
  };
  const soonest = (): FakeTimer | undefined => {
    let best: FakeTimer | undefined;
    for (const timer of timers) {
      if (!best || timer.dueAt < best.dueAt || (timer.dueAt === best.dueAt && timer.seq < best.seq)) best = timer;
    }
    return best;
  };
  return {
    now: () => nowMs,
    setTimeout(callback, ms) {
      seq += 1;
      const timer: FakeTimer = { dueAt: nowMs + Math.max(0, ms), seq, callback, done: false };
      timers.add(timer);
      for (const waiter of waiters) {
        if (waiter.at !== timer.dueAt) continue;
        waiters.delete(waiter);
        waiter.resolve();
      }
      return timer;
    },
    clearTimeout(timer) {
      if (timer === undefined) return;
      const fake = timer as FakeTimer;
      fake.done = true;
      timers.delete(fake);
    },
    advance(ms) {
      const target = nowMs + ms;
      for (let next = soonest(); next && next.dueAt <= target; next = soonest()) {
        timers.delete(next);
        nowMs = Math.max(nowMs, next.dueAt);
        next.done = true;
        next.callback();
      }
      nowMs = target;
    },
    pending: () => timers.size,
    nextDueAt: () => soonest()?.dueAt,
    whenTimerAt(at) {
      if (hasTimerAt(at)) return Promise.resolve();
      return new Promise((resolve) => waiters.add({ at, resolve }));
    },
  };
}
