// loadConfigFile in a worker thread, for a reload while the sidecar serves (SPEC "Reload"): parsing and
// validating a whole platform's connection map must not stall the requests meanwhile. The result comes back
// by structured clone and is frozen again here; a worker that does not answer in time is stopped.
import { Worker } from 'node:worker_threads';
import { type ConfigResult, deepFreeze } from './load.ts';

const workerEntry = new URL('./load-worker.ts', import.meta.url);

/** Reads and validates the configuration file at `path` off the event loop; never rejects. */
export async function loadConfigOffThread(path: string, env: Readonly<Record<string, string | undefined>>,
  deadlineMs = 30_000): Promise<ConfigResult> {
  const worker = new Worker(workerEntry, { workerData: { path, env: { ...env } } });
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await new Promise<ConfigResult>((resolve, reject) => {
      worker.once('message', (message: ConfigResult) => resolve(message));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the config reader exited with ${code} before answering`)));
      timer = setTimeout(() => reject(new Error(`the config reader did not answer within ${deadlineMs} ms`)), deadlineMs);
      timer.unref();
    });
    return result.ok ? { ...result, config: deepFreeze(result.config) } : result;
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `cannot read the configuration: ${(err as Error).message}` }] };
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}
