// `icalpush check`: validate a configuration; print its summary or every problem found. A valid
// file whose store cannot be written is refused too: `serve` would fail on it at start.
import { type ConfigProblem, formatProblems, loadConfigFile } from '../config/load.ts';
import { summarizeConfig } from '../config/summary.ts';
import { storeFileProblem } from '../store/store-path.ts';
import type { CliIo } from './program.ts';

/** Runs the check; resolves with the exit code (0 valid, 1 invalid). */
export async function runCheck(configPath: string, io: CliIo): Promise<number> {
  const result = await loadConfigFile(configPath, io.env);
  const problems = result.ok ? storeProblems(result.config.store) : result.problems;
  if (!result.ok || problems.length > 0) {
    io.stderr.write(`${configPath}: invalid configuration\n`);
    io.stderr.write(`${formatProblems(problems, configPath)}\n`);
    return 1;
  }
  io.stdout.write(`${summarizeConfig(result.config, configPath, result.map)}\n`);
  return 0;
}

/** The store file must be writable, or creatable; checked without creating anything. A Redis URL is not a
 * file, and `check` makes no connection: an unreachable Redis is the degraded mode, not a config error. */
function storeProblems(store: string): ConfigProblem[] {
  if (store === 'memory' || /^rediss?:\/\//i.test(store)) return [];
  const problem = storeFileProblem(store);
  return problem === undefined ? [] : [{ path: 'store', message: `cannot write ${store}: ${problem}` }];
}
