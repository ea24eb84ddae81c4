// Feed analysis for tests: one real worker pool shared by every app of a test process (a pool per app
// would start a thread per test), and an analyzer that runs on the calling thread for unit tests.
import { systemClock } from '../../src/clock.ts';
import { feedWorkerEntry } from '../../src/app.ts';
import type { FeedAnalyzer } from '../../src/feeds/analyzer.ts';
import { createFeedCache, runAnalyze } from '../../src/work/feed-tasks.ts';
import { createWorkerPool, type WorkerPool } from '../../src/work/pool.ts';

let shared: WorkerPool | undefined;

/** The test process's pool (its workers are unref'd: they never keep a finished test run alive). */
export function testPool(): WorkerPool {
  shared ??= createWorkerPool({ entry: feedWorkerEntry, clock: systemClock, size: 2 });
  // An app closes the pool it is given; the shared one must outlive every app.
  return { ...shared, close: async () => {} };
}

/** An analyzer that runs the worker's task on this thread. */
export function inlineAnalyzer(): FeedAnalyzer {
  const cache = createFeedCache();
  return {
    async analyze(key, body, request) {
      const { value } = await runAnalyze({ key, body: new Uint8Array(body), ...request }, cache);
      return { kind: 'done', packed: value };
    },
  };
}
