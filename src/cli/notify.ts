// `icalpush notify LISTING`: tell the running sidecar that LISTING changed by a primary event (a
// manual block from a script or cron), so it notifies the listing's peers now. It goes through the
// sidecar's admin endpoint: the running process owns the outbox, so nothing is sent twice.
import { formatProblems, loadConfigFile } from '../config/load.ts';
import { postToSidecar } from './admin-request.ts';
import type { CliIo } from './program.ts';

/** Runs notify; resolves with the exit code (0 notified, 1 refused or unreachable, 2 bad config). */
export async function runNotify(listing: string, configPath: string, io: CliIo): Promise<number> {
  const result = await loadConfigFile(configPath, io.env);
  if (!result.ok) {
    io.stderr.write(`${configPath}: invalid configuration\n${formatProblems(result.problems, configPath)}\n`);
    return 2;
  }
  const { config } = result;
  if (!Object.hasOwn(config.listings, listing)) {
    const ids = Object.keys(config.listings);
    const shown = ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, … ${ids.length - 10} more` : ids.join(', ') || 'none';
    io.stderr.write(`${listing}: not a listing of ${configPath} (listings: ${shown})\n`);
    return 1;
  }
  const res = await postToSidecar(config, `listings/${encodeURIComponent(listing)}/changed`);
  if (res.kind === 'unreachable') {
    io.stderr.write(`${res.base}: the sidecar is not reachable (${res.cause}); is it running?\n`);
    return 1;
  }
  if (res.status !== 202) {
    io.stderr.write(`${res.base}: ${res.status} ${res.text.trim()}\n`);
    return 1;
  }
  const { notified } = JSON.parse(res.text) as { notified: string[] };
  io.stdout.write(`${listing}: change accepted; notifying ${notified.length ? notified.join(', ') : 'no peer (none has notify: true)'}\n`);
  return 0;
}
