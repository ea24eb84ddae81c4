// Cooperative chunks for the little O(feed) work that stays on the event loop: a loop checks `due()`
// and awaits `pause()` so no slice of it holds the loop longer than a few milliseconds.

/** Lets every ready I/O callback and timer run before the caller continues. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A time slice: `due()` once `sliceMs` of work has run since the last pause. */
export type Slice = { due(): boolean; pause(): Promise<void> };

/** Starts a slice of `sliceMs` (default 4 ms). */
export function createSlice(sliceMs = 4): Slice {
  let startedAt = performance.now();
  return {
    due: () => performance.now() - startedAt >= sliceMs,
    async pause() {
      await yieldToLoop();
      startedAt = performance.now();
    },
  };
}
