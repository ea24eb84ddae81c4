// A small pool of worker threads for the work that must never run on the event loop (SPEC
// "Guarantees": parsing, splitting, hashing and recurrence expansion of large or hostile feeds).
// Ours rather than piscina: a task is routed to the worker that last read the same feed, whose cache
// (the feed's blocks, reuse.ts) makes a changed re-read cost its changes; and every task has a hard
// deadline after which its worker is terminated and replaced, so no feed can hold a thread forever.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Clock, Timer } from '../clock.ts';
import { fnv1a } from '../util/fnv.ts';

/** What a task came to: its value, or why there is none. Expected outcomes, never a throw. */
export type PoolOutcome<R> =
  | { kind: 'done'; value: R }
  /** The task ran past its deadline; its worker was replaced. */
  | { kind: 'timeout' }
  /** The queue was full, or the task waited past its deadline for a worker. */
  | { kind: 'busy' }
  /** The worker threw or died. */
  | { kind: 'failed'; message: string }
  | { kind: 'closed' };

/** One task as the worker receives it. */
export type TaskMessage = { type: string; payload: unknown };

/** Options of one run. */
export type RunOptions = {
  /** Tasks with the same affinity go to the same worker when it is free. */
  affinity?: string;
  /** Longest wait for a worker, and then longest run. */
  deadlineMs: number;
  /** ArrayBuffers moved (not copied) to the worker. */
  transfer?: ArrayBuffer[];
};

/** The pool. */
export type WorkerPool = {
  run<R>(task: TaskMessage, options: RunOptions): Promise<PoolOutcome<R>>;
  /** Workers, tasks running and tasks waiting. */
  stats(): { workers: number; running: number; queued: number };
  /** Terminates every worker; running and waiting tasks come to `closed`. */
  close(): Promise<void>;
};

/** Options for createWorkerPool. */
export type WorkerPoolOptions = {
  /** The worker's entry module. */
  entry: URL;
  clock: Clock;
  /** Worker threads; default: one less than the cores, at least 1, at most 4. */
  size?: number;
  /** Tasks waiting at once; past it a run is `busy` at once. Default 256. */
  maxQueue?: number;
  /** Told when a worker is replaced (deadline, crash). */
  onReplace?: (reason: 'timeout' | 'crash') => void;
};

type Pending = {
  id: number;
  task: TaskMessage;
  options: RunOptions;
  resolve: (outcome: PoolOutcome<unknown>) => void;
  /** While queued: the wait deadline; while running: the run deadline. */
  timer: Timer | undefined;
};

type Slot = { index: number; worker: Worker | undefined; running: Pending | undefined };

// A small young generation: a feed's analysis makes much short-lived garbage, and a large nursery let it
// grow the process by twice as much (measured: 10.5× → 7.4× a 12 MB feed, no slower). The old generation is
// bounded so a feed that would take a gigabyte ends its worker (a failed task), not the process.
const resourceLimits = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 1_536 };

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

/** The default number of worker threads for this machine. */
export function defaultPoolSize(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

/** Creates a pool; workers start on first use. */
export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const { clock, entry } = options;
  const size = Math.max(1, options.size ?? defaultPoolSize());
  const maxQueue = options.maxQueue ?? 256;
  const slots: Slot[] = Array.from({ length: size }, (_, index) => ({ index, worker: undefined, running: undefined }));
  const queue: Pending[] = [];
  let nextId = 0;
  let closed = false;

  function spawn(slot: Slot): Worker {
    const worker = new Worker(entry, { resourceLimits });
    worker.on('message', (reply: Reply) => {
      const task = slot.running;
      if (!task || task.id !== reply.id) return;
      finish(slot, reply.ok ? { kind: 'done', value: reply.value } : { kind: 'failed', message: reply.message });
    });
    const lost = (reason: string) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      const task = slot.running;
      if (task) {
        options.onReplace?.('crash');
        finish(slot, { kind: 'failed', message: reason });
      }
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`worker exited with code ${code}`));
    // An idle pool must not keep a finished process alive (the app closes it on shutdown); a worker with a
    // task does. After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    slot.worker = worker;
    return worker;
  }

  function finish(slot: Slot, outcome: PoolOutcome<unknown>): void {
    const task = slot.running;
    if (!task) return;
    clock.clearTimeout(task.timer);
    slot.running = undefined;
    slot.worker?.unref();
    task.resolve(outcome);
    pump();
  }

  function start(slot: Slot, task: Pending): void {
    clock.clearTimeout(task.timer);
    slot.running = task;
    const worker = slot.worker ?? spawn(slot);
    worker.ref();
    task.timer = clock.setTimeout(() => {
      if (slot.running !== task) return;
      // The worker may be deep in a library call: terminating it is the only way to get the thread back.
      const stuck = slot.worker;
      slot.worker = undefined;
      options.onReplace?.('timeout');
      finish(slot, { kind: 'timeout' });
      void stuck?.terminate();
    }, task.options.deadlineMs);
    worker.postMessage({ id: task.id, ...task.task }, task.options.transfer ?? []);
  }

  function pump(): void {
    if (closed) return;
    while (queue.length > 0) {
      const idle = slots.filter((s) => s.running === undefined);
      if (idle.length === 0) return;
      const task = queue.shift() as Pending;
      start(preferred(idle, task.options.affinity), task);
    }
  }

  function preferred(idle: Slot[], affinity: string | undefined): Slot {
    if (affinity === undefined || idle.length === 1) return idle[0] as Slot;
    const home = fnv1a(affinity) % size;
    return idle.find((s) => s.index === home) ?? (idle[0] as Slot);
  }

  return {
    run<R>(task: TaskMessage, runOptions: RunOptions) {
      return new Promise<PoolOutcome<R>>((resolve) => {
        if (closed) {
          resolve({ kind: 'closed' });
          return;
        }
        if (queue.length >= maxQueue) {
          resolve({ kind: 'busy' });
          return;
        }
        nextId += 1;
        const pending: Pending = {
          id: nextId,
          task,
          options: runOptions,
          resolve: resolve as (outcome: PoolOutcome<unknown>) => void,
          timer: undefined,
        };
        pending.timer = clock.setTimeout(() => {
          const at = queue.indexOf(pending);
          if (at === -1) return;
          queue.splice(at, 1);
          resolve({ kind: 'busy' });
        }, runOptions.deadlineMs);
        queue.push(pending);
        pump();
      });
    },
    stats: () => ({
      workers: slots.filter((s) => s.worker !== undefined).length,
      running: slots.filter((s) => s.running !== undefined).length,
      queued: queue.length,
    }),
    async close() {
      if (closed) return;
      closed = true;
      for (const task of queue.splice(0)) {
        clock.clearTimeout(task.timer);
        task.resolve({ kind: 'closed' });
      }
      const workers: Worker[] = [];
      for (const slot of slots) {
        const task = slot.running;
        if (task) {
          clock.clearTimeout(task.timer);
          slot.running = undefined;
          task.resolve({ kind: 'closed' });
        }
        if (slot.worker) workers.push(slot.worker);
        slot.worker = undefined;
      }
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
