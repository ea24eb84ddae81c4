// Time as a dependency, so retention, debounce and retries are testable without sleeping.

/** The source of "now" for everything that stores or compares times. */
export type Clock = {
  /** Milliseconds since the Unix epoch. */
  now(): number;
};

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
