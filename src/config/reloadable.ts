// What a reload (SPEC "Reload") puts in force at once, and what waits for a restart. The connection map
// (inline listings and listingsFile), the triggers and the default time zone are read at each use; the rest
// (where the sidecar listens, its upstream, its store, its timeouts, the watch's schedule…) is built into
// listening sockets, pools and timers at start.
import { isDeepStrictEqual } from 'node:util';
import { eachInSlices } from '../util/yield.ts';
import type { Config } from './schema.ts';

/** The keys a reload applies; under `push`, the sub-keys. */
const reloadedKeys: ReadonlySet<string> = new Set(['listings', 'listingsFile', 'push']);
const reloadedPushKeys: ReadonlySet<string> = new Set(['triggers', 'timezone']);

/** The config a reload puts in force: the running one (what was built at start) with the reloaded keys of `next`. */
export function reloadedConfig(running: Config, next: Config): Config {
  const { listingsFile: _file, ...rest } = running;
  return Object.freeze({
    ...rest,
    ...(next.listingsFile === undefined ? {} : { listingsFile: next.listingsFile }),
    listings: next.listings,
    push: Object.freeze(withTimezone({ ...running.push, triggers: next.push.triggers }, next.push.timezone)),
  }) as Config;
}

function withTimezone(push: Config['push'], timezone: string | undefined): Config['push'] {
  const { timezone: _old, ...rest } = push;
  return timezone === undefined ? rest : { ...rest, timezone };
}

/** The keys whose new value differs from the one running (built at start) and takes effect only at the next
 * restart. */
export function keysNeedingRestart(current: Config, next: Config): string[] {
  const changed: string[] = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  for (const key of keys) {
    const before = (current as Record<string, unknown>)[key];
    const after = (next as Record<string, unknown>)[key];
    if (key === 'push') {
      for (const sub of new Set([...Object.keys(current.push), ...Object.keys(next.push)])) {
        if (reloadedPushKeys.has(sub)) continue;
        const was = (current.push as Record<string, unknown>)[sub];
        const is = (next.push as Record<string, unknown>)[sub];
        if (!isDeepStrictEqual(was, is)) changed.push(`push.${sub}`);
      }
    } else if (!reloadedKeys.has(key) && !isDeepStrictEqual(before, after)) changed.push(key);
  }
  return changed.sort();
}

/** How the map changed: listings added, removed, and kept with another definition. Compared in slices of the
 * event loop: 10,000 listings compared at once held it ~50 ms. */
export async function mapChanges(current: Config['listings'], next: Config['listings']): Promise<{ added: number;
  removed: number; changed: number; }> {
  let added = 0;
  let changed = 0;
  let removed = 0;
  await eachInSlices(Object.entries(next), ([id, listing]) => {
    const before = current[id];
    if (before === undefined) added += 1;
    else if (!isDeepStrictEqual(before, listing)) changed += 1;
  });
  await eachInSlices(Object.keys(current), (id) => {
    if (!Object.hasOwn(next, id)) removed += 1;
  });
  return { added, removed, changed };
}
