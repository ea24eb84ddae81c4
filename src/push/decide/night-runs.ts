// Nights as people read them: runs of consecutive nights written `check-in/check-out`
// (`2027-08-01/2027-08-06` is the five nights of August 1–5, the way the iCalendar exports write a stay:
// DTEND is the day after the last night). Bounded, so a decision stays small whatever a feed does.
import { addDays } from './dates.ts';

/** At most this many runs are written per list; past it the list ends and `truncated` says so. */
export const maxRuns = 64;

/** Sorted, distinct nights → runs (`from/to`, `to` the day after the last night). */
export function nightRuns(nights: readonly string[], max = maxRuns): { runs: string[]; truncated: boolean } {
  const runs: string[] = [];
  let i = 0;
  while (i < nights.length) {
    if (runs.length === max) return { runs, truncated: true };
    const from = nights[i] as string;
    let last = from;
    i += 1;
    while (i < nights.length && nights[i] === addDays(last, 1)) {
      last = nights[i] as string;
      i += 1;
    }
    runs.push(`${from}/${addDays(last, 1)}`);
  }
  return { runs, truncated: false };
}

/** Runs back to nights (for tests and tools reading decisions). */
export function nightsOfRuns(runs: readonly string[]): string[] {
  const nights: string[] = [];
  for (const run of runs) {
    const [from, to] = run.split('/') as [string, string];
    for (let night = from; night < to; night = addDays(night, 1)) nights.push(night);
  }
  return nights;
}
