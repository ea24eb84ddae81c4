// The one keyed serial queue: tasks under one key run one after another, tasks under different keys
// run freely. A key leaves the map when its queue drains, so the map is bounded by the keys busy now.

/** Runs `task` after every earlier task of the same key; resolves or rejects as `task` does. */
export type KeyedQueue = (<T>(key: string, task: () => Promise<T>) => Promise<T>) & {
  /** Resolves once every task queued so far has settled. */
  idle(): Promise<void>;
};

/** Creates an empty keyed queue. */
export function createKeyedQueue(): KeyedQueue {
  const tails = new Map<string, Promise<void>>();
  const run = <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(() => undefined, () => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  };
  return Object.assign(run, {
    async idle() {
      while (tails.size > 0) await Promise.all([...tails.values()]);
    },
  });
}
