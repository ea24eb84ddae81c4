// `icalpush check`: validate a configuration; print its summary or every problem found.
import { formatProblems, loadConfigFile } from '../config/load.ts';
import { summarizeConfig } from '../config/summary.ts';
import type { CliIo } from './program.ts';

/** Runs the check; resolves with the exit code (0 valid, 1 invalid). */
export async function runCheck(configPath: string, io: CliIo): Promise<number> {
  const result = await loadConfigFile(configPath, io.env);
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n`);
    io.stderr.write(`${formatProblems(result.problems, configPath)}\n`);
    return 1;
  }
  io.stdout.write(`${summarizeConfig(result.config, configPath)}\n`);
  return 0;
}
