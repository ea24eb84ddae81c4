// A min-heap of (dueAt, key): what is due first, for schedulers that keep one timer for the earliest
// entry instead of one per entry. Rescheduling pushes a new item; the reader skips items left behind
// (it knows the live due time of each key), so at most one live item per key matters.

/** One entry: when it is due (ms) and whose it is. */
export type DueItem = { dueAt: number; key: string };

/** The heap: push, look at the earliest, drop the earliest. */
export type DueHeap = {
  push(dueAt: number, key: string): void;
  peek(): DueItem | undefined;
  pop(): void;
  /** Items held, those left behind included. */
  size(): number;
};

/** Creates an empty heap. */
export function createDueHeap(): DueHeap {
  const items: DueItem[] = [];
  const less = (a: number, b: number) => (items[a] as DueItem).dueAt < (items[b] as DueItem).dueAt;
  const swap = (a: number, b: number) => {
    const t = items[a] as DueItem;
    items[a] = items[b] as DueItem;
    items[b] = t;
  };
  return {
    push(dueAt, key) {
      items.push({ dueAt, key });
      let i = items.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!less(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    },
    peek: () => items[0],
    size: () => items.length,
    pop() {
      const last = items.pop();
      if (last === undefined || items.length === 0) return;
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && less(l, m)) m = l;
        if (r < items.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    },
  };
}
