// The one single-flight: callers asking for the same key while its work runs share that work's promise.
// An entry lives only while its work runs, so the map is bounded by the work under way.

/** Runs `work` for `key`, or joins the run already under way for it. */
export type SingleFlight<T> = ((key: string, work: () => Promise<T>) => Promise<T>) & {
  /** Keys whose work is under way. */
  readonly size: number;
  /** True while work for `key` is under way. */
  has(key: string): boolean;
};

/** Creates an empty single-flight. */
export function createSingleFlight<T>(): SingleFlight<T> {
  const running = new Map<string, Promise<T>>();
  const run = (key: string, work: () => Promise<T>): Promise<T> => {
    const shared = running.get(key);
    if (shared) return shared;
    const started = work().finally(() => running.delete(key));
    running.set(key, started);
    return started;
  };
  const flight = Object.defineProperty(run, 'size', { get: () => running.size }) as SingleFlight<T>;
  flight.has = (key) => running.has(key);
  return flight;
}
