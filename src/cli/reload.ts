// `icalpush reload`: ask the running sidecar to re-read its config and listings file (SPEC "Reload"). The
// config file given here only says where the sidecar listens and its admin token: the sidecar re-reads its
// own, and answers with what it put in force, or every problem and "the map in force is kept".
import { formatProblems, loadConfigFile } from '../config/load.ts';
import type { ReloadOutcome } from '../app.ts';
import { postToSidecar } from './admin-request.ts';
import type { CliIo } from './program.ts';

/** Runs reload; resolves with the exit code (0 reloaded, 1 refused or unreachable, 2 bad config). */
export async function runReload(configPath: string, io: CliIo): Promise<number> {
  // The listings file is the sidecar's to judge: a broken one must still reach it, to be refused there.
  const result = await loadConfigFile(configPath, io.env, { listingsFile: false });
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n${formatProblems(result.problems, configPath)}\n`);
    return 2;
  }
  const res = await postToSidecar(result.config, 'reload', 60_000);
  if (res.kind === 'unreachable') {
    io.stderr.write(`${res.base}: the sidecar is not reachable (${res.cause}); is it running?\n`);
    return 1;
  }
  let outcome: ReloadOutcome | undefined;
  try {
    outcome = JSON.parse(res.text) as ReloadOutcome;
  } catch {
    outcome = undefined;
  }
  if (outcome?.ok === true) {
    const { listings, added, removed, changed, restartNeeded } = outcome;
    io.stdout.write(`${res.base}: reloaded: ${listings} listings (${added} added, ${removed} removed, ${changed} changed)\n`);
    if (restartNeeded.length > 0) {
      io.stdout.write(`changed, taking effect at the next restart: ${restartNeeded.join(', ')}\n`);
    }
    return 0;
  }
  if (outcome?.ok === false && Array.isArray(outcome.problems)) {
    io.stderr.write(`${res.base}: reload refused; the configuration in force is kept\n${outcome.problems.join('\n')}\n`);
    return 1;
  }
  io.stderr.write(`${res.base}: ${res.status} ${res.text.trim()}\n`);
  return 1;
}
