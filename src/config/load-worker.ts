// The worker side of loadConfigOffThread: reads and validates the configuration (and its listings file), and
// posts the result: the config without its listings first, then the listings in chunks, each once the other
// side asks for it (`next`): queued messages are all taken in one turn of its event loop, which 40 chunks of a
// 10,000-listing map held for ~100 ms; asked for one by one, each takes a turn of its own.
import { once } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile } from './load.ts';

/** What the worker posts, in order: `result`, then (when ok) `listings` chunks, then `end`. */
export type LoadMessage =
  | { kind: 'result'; result: Awaited<ReturnType<typeof loadConfigFile>> }
  | { kind: 'listings'; entries: Array<[string, unknown]> }
  | { kind: 'end' };

/** Listings per message. */
const chunk = 250;

const { path, env } = workerData as { path: string; env: Record<string, string | undefined> };
const result = await loadConfigFile(path, env);
const post = (message: LoadMessage) => parentPort?.postMessage(message);
if (!result.ok) post({ kind: 'result', result });
else {
  post({ kind: 'result', result: { ...result, config: { ...result.config, listings: {} } } });
  const entries = Object.entries(result.config.listings);
  for (let at = 0; at < entries.length; at += chunk) {
    post({ kind: 'listings', entries: entries.slice(at, at + chunk) });
    if (parentPort) await once(parentPort, 'message');
  }
}
post({ kind: 'end' });
