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

/** Calls `visit` on every item, letting the event loop run whenever `slice` is due (checked every 256). */
export async function eachInSlices<T>(items: Iterable<T>, visit: (item: T) => void,
  slice = createSlice()): Promise<void> {
  let seen = 0;
  for (const item of items) {
    visit(item);
    seen += 1;
    if ((seen & 255) === 0 && slice.due()) await slice.pause();
  }
}

/** Sorts strings in code-unit order like Array#sort, in blocks merged pairwise, letting the loop run between:
 * 25,000 ids sorted at once held it 10 ms. */
export async function sortInSlices(items: readonly string[], slice = createSlice()): Promise<string[]> {
  const block = 2048;
  if (items.length <= block) return [...items].sort();
  let runs: string[][] = [];
  for (let at = 0; at < items.length; at += block) {
    runs.push(items.slice(at, at + block).sort());
    if (slice.due()) await slice.pause();
  }
  while (runs.length > 1) {
    const merged: string[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i] as string[];
      const b = runs[i + 1];
      merged.push(b ? merge(a, b) : a);
      if (slice.due()) await slice.pause();
    }
    runs = merged;
  }
  return runs[0] ?? [];
}

function merge(a: string[], b: string[]): string[] {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as string;
    const y = b[j] as string;
    if (x <= y) {
      out[k++] = x;
      i += 1;
    } else {
      out[k++] = y;
      j += 1;
    }
  }
  while (i < a.length) out[k++] = a[i++] as string;
  while (j < b.length) out[k++] = b[j++] as string;
  return out;
}
