// The entry of a pool worker thread (pool.ts): answers feed tasks (feed-tasks.ts) one at a time.
// A task that throws answers with its message; a task that never ends is the pool's to terminate.
import { parentPort } from 'node:worker_threads';
import { type AnalyzeTask, createFeedCache, runAnalyze } from './feed-tasks.ts';

type Request = { id: number; type: string; payload: unknown };

const cache = createFeedCache();
const port = parentPort;

if (port) {
  port.on('message', (request: Request) => {
    void handle(request).then(
      ({ value, transfer }) => port.postMessage({ id: request.id, ok: true, value }, transfer),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        port.postMessage({ id: request.id, ok: false, message });
      },
    );
  });
}

async function handle(request: Request): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (request.type) {
    case 'analyze':
      return runAnalyze(request.payload as AnalyzeTask, cache);
    case 'spin': {
      // For the pool's own tests: a task that holds its thread for `ms` (or forever).
      const { ms } = request.payload as { ms: number };
      const until = Date.now() + ms;
      while (Date.now() < until) { /* hold the thread */ }
      return { value: ms, transfer: [] };
    }
    case 'crash':
      // For the pool's own tests: a worker thread that dies mid-task.
      process.exit(1);
    // eslint-disable-next-line no-fallthrough
    default:
      throw new Error(`unknown task ${request.type}`);
  }
}
