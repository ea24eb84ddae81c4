// The watch (SPEC "Push": detecting primary changes): every listing's own feed re-read every
// `push.watch`, the listings spread evenly over the interval, a bounded number of reads at once, each
// holding its slot only until it ends (its deadline at the latest), backing off while the upstream errs.
import type { Clock, Timer } from '../clock.ts';
import type { ListingPlan } from './plans.ts';

/** Options for createWatch. */
export type WatchOptions = {
  plans: ReadonlyMap<string, ListingPlan>;
  clock: Clock;
  /** `push.watch` in ms; 0 turns the watch off. */
  intervalMs: number;
  /** Reads under way at once. */
  concurrency: number;
  /** Reads the listing's own feed; resolves true when the answer was a calendar. Never rejects. */
  read(plan: ListingPlan): Promise<boolean>;
  /**
   * Whether this replica reads `plan` in this slot (SPEC "Several replicas": each listing once per interval
   * across the fleet); a slot not taken comes again an interval later. Always, by default. Never rejects.
   */
  mayRead?(plan: ListingPlan): Promise<boolean>;
};

/** The watch. */
export type Watch = {
  start(): void;
  /** Stops the schedule; resolves once the reads under way ended. */
  close(): Promise<void>;
};

type Slot = { nextAt: number; failures: number; reading: boolean };

/** Creates the watch; nothing happens before start(). */
export function createWatch(options: WatchOptions): Watch {
  const { plans, clock, intervalMs, concurrency } = options;
  const slots = new Map<string, Slot>();
  const reads = new Set<Promise<void>>();
  let timer: Timer | undefined;
  let closed = false;

  /** Starts a read of every listing whose slot came, while fewer than `concurrency` are under way. */
  function tick(): void {
    const now = clock.now();
    for (const plan of plans.values()) {
      if (closed || reads.size >= concurrency) return;
      const slot = slots.get(plan.id);
      if (!slot || slot.reading || slot.nextAt > now) continue;
      slot.reading = true;
      const planned = slot.nextAt;
      const may = options.mayRead ? options.mayRead(plan).catch(() => true) : Promise.resolve(true);
      const reading: Promise<void> = may
        .then((mine): Promise<boolean | 'skipped'> => (mine ? options.read(plan).catch(() => false)
          : Promise.resolve('skipped')))
        .then((ok) => {
          // Back off while the upstream errs: the interval doubles per failure, up to 16 times. Another
          // replica's slot keeps the listing's place in the spread, unchanged.
          if (ok !== 'skipped') slot.failures = ok ? 0 : Math.min(slot.failures + 1, 4);
          // From the planned slot, not from when the read ended: the listing keeps its place in the
          // spread, and the interval does not stretch by the upstream's answer time and the tick.
          slot.nextAt = Math.max(planned + intervalMs * 2 ** slot.failures, clock.now());
        })
        .finally(() => {
          slot.reading = false;
          reads.delete(reading);
        });
      reads.add(reading);
    }
  }

  function schedule(tickMs: number): void {
    timer = clock.setTimeout(() => {
      if (closed) return;
      tick();
      schedule(tickMs);
    }, tickMs);
  }

  return {
    start() {
      if (intervalMs <= 0 || plans.size === 0 || closed) return;
      // Spread the listings over the interval so the upstream sees an even load.
      const now = clock.now();
      let i = 0;
      for (const plan of plans.values()) {
        slots.set(plan.id, { nextAt: now + Math.floor((intervalMs * i) / plans.size), failures: 0, reading: false });
        i += 1;
      }
      schedule(Math.max(50, Math.min(1_000, Math.floor(intervalMs / Math.max(1, plans.size)))));
    },
    async close() {
      closed = true;
      clock.clearTimeout(timer);
      // Reads under way end by their deadline, or at once when the app aborts its outbound requests.
      await Promise.allSettled([...reads]);
    },
  };
}
