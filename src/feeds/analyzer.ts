// Sends feed bodies to the worker pool for analysis (work/feed-tasks.ts) and says what came of it. The
// deadline grows with the body, so a legitimate 20 MB export finishes while a feed built to run forever
// is cut (its worker replaced) and the feed served unversioned.
import type { PackedAnalysis } from '../work/feed-tasks.ts';
import type { WorkerPool } from '../work/pool.ts';

/** What to compute besides the entities. */
export type AnalyzeRequest = {
  /** Entities beyond this count are not sent back. */
  maxEntities: number;
  nights?: { today: string; days?: number; zone?: string };
  deleted?: boolean;
};

/** What an analysis came to. */
export type AnalyzeOutcome =
  | { kind: 'done'; packed: PackedAnalysis }
  /** It ran past its deadline: the feed is too costly to read. */
  | { kind: 'too-complex' }
  /** No worker was free in time, or the pool is closing. */
  | { kind: 'busy' }
  | { kind: 'failed'; message: string };

/** Analyses feed bodies off the event loop. */
export type FeedAnalyzer = {
  /** `key` routes reads of one feed to the worker that read it last. The body is copied, never moved. */
  analyze(key: string, body: Buffer, request: AnalyzeRequest): Promise<AnalyzeOutcome>;
};

const baseDeadlineMs = 5_000;
const deadlinePerMiBMs = 1_000;
const maxDeadlineMs = 60_000;

/** The deadline of an analysis of `bytes`. */
export function analysisDeadlineMs(bytes: number): number {
  return Math.min(maxDeadlineMs, baseDeadlineMs + Math.ceil(bytes / (1024 * 1024)) * deadlinePerMiBMs);
}

/** Creates the analyzer over `pool`. */
export function createFeedAnalyzer(pool: WorkerPool): FeedAnalyzer {
  return {
    async analyze(key, body, request) {
      // A body in shared memory (every large one, http/clients.ts) is read by the worker where it is; a
      // small one gets a copy of its own to move, since `body` may sit in a pool slab.
      const shared = body.buffer instanceof SharedArrayBuffer;
      const view = shared ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(body);
      const outcome = await pool.run<PackedAnalysis>(
        { type: 'analyze', payload: { key, body: view, ...request } },
        {
          affinity: key,
          deadlineMs: analysisDeadlineMs(body.length),
          ...(shared ? {} : { transfer: [view.buffer as ArrayBuffer] }),
        },
      );
      switch (outcome.kind) {
        case 'done':
          return { kind: 'done', packed: outcome.value };
        case 'timeout':
          return { kind: 'too-complex' };
        case 'busy':
        case 'closed':
          return { kind: 'busy' };
        default:
          return { kind: 'failed', message: outcome.message };
      }
    },
  };
}
