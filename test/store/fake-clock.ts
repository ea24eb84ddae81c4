// A Clock that only moves when a test says so, for TTL and sweep tests without sleeping.
import type { Clock } from '../../src/clock.ts';

/** A Clock starting at `startMs` that `advance` moves forward. */
export type FakeClock = Clock & { advance(ms: number): void };

/** A FakeClock at `startMs` (an arbitrary fixed instant by default). */
export function createFakeClock(startMs = Date.UTC(2025, 0, 1)): FakeClock {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance(ms) {
      nowMs += ms;
    },
  };
}
