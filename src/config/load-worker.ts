// The worker side of loadConfigOffThread: reads and validates the configuration (and its listings file), and
// posts the result. A map of 10,000 listings costs a few hundred ms of parsing and validation: here, not on
// the event loop that answers requests.
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile } from './load.ts';

const { path, env } = workerData as { path: string; env: Record<string, string | undefined> };
parentPort?.postMessage(await loadConfigFile(path, env));
