// loadConfigFile in a worker thread, for a reload while the sidecar serves (SPEC "Reload"): parsing and
// validating a whole platform's connection map must not stall the requests meanwhile. The result comes back
// by structured clone, the listings in chunks (each taken in and frozen in its own turn of the event loop); a
// worker that does not answer in time is stopped.
import { Worker } from 'node:worker_threads';
import { type ConfigResult, deepFreeze } from './load.ts';
import type { LoadMessage } from './load-worker.ts';
import type { Config } from './schema.ts';

const workerEntry = new URL('./load-worker.ts', import.meta.url);

/** Reads and validates the configuration file at `path` off the event loop; never rejects. */
export async function loadConfigOffThread(path: string, env: Readonly<Record<string, string | undefined>>,
  deadlineMs = 30_000): Promise<ConfigResult> {
  const worker = new Worker(workerEntry, { workerData: { path, env: { ...env } } });
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await new Promise<ConfigResult>((resolve, reject) => {
      let shell: ConfigResult | undefined;
      const listings: Record<string, unknown> = {};
      worker.on('message', (message: LoadMessage) => {
        if (message.kind === 'result') shell = message.result;
        else if (message.kind === 'listings') {
          // Frozen as they arrive, chunk by chunk: the final freeze finds them done.
          for (const [id, listing] of message.entries) listings[id] = deepFreeze(listing);
          // The next chunk once the loop has had its turn.
          setImmediate(() => worker.postMessage('next'));
        } else if (shell === undefined) reject(new Error('the config reader ended without a result'));
        else if (!shell.ok) resolve(shell);
        else resolve({ ...shell, config: deepFreeze({ ...shell.config, listings: listings as Config['listings'] }) });
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the config reader exited with ${code} before answering`)));
      timer = setTimeout(() => reject(new Error(`the config reader did not answer within ${deadlineMs} ms`)), deadlineMs);
      timer.unref();
    });
    return result;
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `cannot read the configuration: ${(err as Error).message}` }] };
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}
