// Re-reads of a listing's own feed a little later (SPEC "Push"): after a trigger's 2xx (now and 2 s later,
// for upstreams that export asynchronously), after a refresh (to see the import land) and after an
// operator notify. A newer schedule of a listing replaces the one before; close() cancels them all.
import type { Clock, Timer } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { ListingPlan } from './plans.ts';

/** Schedules re-reads of listings' own feeds. */
export type Rereads = {
  /** Reads `plan`'s feed after each of `delaysMs`, replacing what was scheduled for it. */
  schedule(plan: ListingPlan, delaysMs: readonly number[], why: string): void;
  close(): void;
};

/** After a trigger: now, and once more for upstreams that export asynchronously. */
export const rereadAfterTriggerMs = [0, 2_000] as const;
/** After a refresh, to see the import land (ms after the refresh answered). */
export const rereadAfterRefreshMs = [0, 2_000, 5_000, 15_000, 30_000, 60_000] as const;

/** Creates the scheduler; `read` reads a listing's own feed (and logs what it came to). */
export function createRereads(clock: Clock, logger: Logger,
  read: (plan: ListingPlan, why: string) => Promise<unknown>): Rereads {
  const timers = new Map<string, Timer[]>();
  return {
    schedule(plan, delaysMs, why) {
      for (const timer of timers.get(plan.id) ?? []) clock.clearTimeout(timer);
      const scheduled = delaysMs.map((ms) => {
        const timer = clock.setTimeout(() => {
          const left = (timers.get(plan.id) ?? []).filter((t) => t !== timer);
          if (left.length > 0) timers.set(plan.id, left);
          else timers.delete(plan.id);
          void read(plan, why).catch((err: unknown) => logger.error({ err, listing: plan.id }, 'own feed re-read failed'));
        }, ms);
        return timer;
      });
      timers.set(plan.id, scheduled);
    },
    close() {
      for (const list of timers.values()) for (const timer of list) clock.clearTimeout(timer);
      timers.clear();
    },
  };
}
