// The iCal Hooks delivery queue: jobs waiting for their HEAD, at most `concurrency` running across
// all feeds, at most `capacity` held in memory (the caller keeps the rest in the store), retries
// parked on the clock's timers. It knows nothing of hooks: `run` says whether to try again.
import type { Clock, Timer } from '../clock.ts';

/** Options for createDeliveryQueue. */
export type DeliveryQueueOptions<T> = {
  clock: Clock;
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs held at once: waiting, parked for a retry and running together. */
  capacity: number;
  /** A job whose key is already held is not added twice. */
  keyOf(job: T): string;
  /** One attempt (1, 2, …); a number asks for another attempt that many ms later. */
  run(job: T, attempt: number): Promise<number | undefined>;
  /** Called once room has freed (down to half the capacity) after add() answered `full`. */
  onRoom(): void;
  /** Called once the next attempt of `job` is scheduled, `retryInMs` from now. */
  onRetry?(job: T, failedAttempt: number, retryInMs: number): void;
};

/** What add() did with a job. */
export type AddResult = 'queued' | 'held' | 'full' | 'closed';

/** A bounded queue of jobs with bounded concurrency. */
export type DeliveryQueue<T> = {
  /** Takes `job` (`queued`), or says it already holds one with its key, is full, or is closed. */
  add(job: T): AddResult;
  /** Jobs held: waiting, parked for a retry, running. */
  readonly size: number;
  /** Resolves when no job is held. */
  idle(): Promise<void>;
  /** Takes no more jobs and drops the waiting and parked ones; resolves when the running ones end. */
  close(): Promise<void>;
};

type Entry<T> = { job: T; key: string; attempt: number };

/** Creates an empty queue. */
export function createDeliveryQueue<T>(options: DeliveryQueueOptions<T>): DeliveryQueue<T> {
  const { clock, concurrency, capacity, keyOf, run, onRoom, onRetry } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be a positive integer');
  if (!Number.isInteger(capacity) || capacity < 1) throw new Error('capacity must be a positive integer');
  const held = new Set<string>();
  // FIFO with a moving head: shift() on a 10,000-entry array would copy it on every start.
  let waiting: Entry<T>[] = [];
  let head = 0;
  const parked = new Map<Timer, Entry<T>>();
  let running = 0;
  let closed = false;
  let refused = false;
  let idleWaiters: Array<() => void> = [];
  let drainWaiters: Array<() => void> = [];

  const settle = () => {
    if (refused && !closed && held.size <= capacity / 2) {
      refused = false;
      onRoom();
    }
    if (held.size === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (running === 0) {
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  const finish = (entry: Entry<T>, retryInMs: number | undefined) => {
    running -= 1;
    if (retryInMs !== undefined && !closed) {
      const timer = clock.setTimeout(() => {
        parked.delete(timer);
        waiting.push({ ...entry, attempt: entry.attempt + 1 });
        pump();
      }, retryInMs);
      parked.set(timer, entry);
      onRetry?.(entry.job, entry.attempt, retryInMs);
    } else {
      held.delete(entry.key);
    }
    pump();
    settle();
  };

  const pump = () => {
    while (!closed && running < concurrency && head < waiting.length) {
      const entry = waiting[head] as Entry<T>;
      head += 1;
      if (head > 1_024 && head * 2 > waiting.length) {
        waiting = waiting.slice(head);
        head = 0;
      }
      running += 1;
      // run() is not meant to reject; if it does, the job ends rather than the queue.
      run(entry.job, entry.attempt).then(
        (retryInMs) => finish(entry, retryInMs),
        () => finish(entry, undefined),
      );
    }
  };

  return {
    add(job) {
      if (closed) return 'closed';
      const key = keyOf(job);
      if (held.has(key)) return 'held';
      if (held.size >= capacity) {
        refused = true;
        return 'full';
      }
      held.add(key);
      waiting.push({ job, key, attempt: 1 });
      pump();
      return 'queued';
    },
    get size() {
      return held.size;
    },
    idle() {
      if (held.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      if (!closed) {
        closed = true;
        for (const [timer, entry] of parked) {
          clock.clearTimeout(timer);
          held.delete(entry.key);
        }
        parked.clear();
        for (const entry of waiting.slice(head)) held.delete(entry.key);
        waiting = [];
        head = 0;
        settle();
      }
      if (running === 0) return Promise.resolve();
      return new Promise((resolve) => drainWaiters.push(resolve));
    },
  };
}
