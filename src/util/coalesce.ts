// The one "run again after this" helper: a call while the work runs does not start a second run alongside it,
// nor is it lost; every caller that arrives meanwhile shares one more run, after the current one. So requests
// that come in a burst (SIGHUPs, reload POSTs) cost at most two runs, and the last caller sees what was true
// when it asked.

/** Runs `work`, or joins the one run queued after the run under way. */
export type Coalesced<T> = () => Promise<T>;

/** Wraps `work` so that its runs never overlap and a burst of calls costs at most two runs. */
export function createCoalesced<T>(work: () => Promise<T>): Coalesced<T> {
  let running: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const run = work().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    if (queued) return queued;
    if (!running) return start();
    const next = running.then(() => undefined, () => undefined).then(() => {
      queued = undefined;
      return start();
    });
    queued = next;
    return next;
  };
}
