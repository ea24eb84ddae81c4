// The command line (commander): `serve`, `check`, `notify`, `reload` and `status`, each with --config, and
// `replay` over captured export files; --help on every one. Commands return what happened; only main.ts exits
// the process or handles signals.
import { Command } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { runCheck } from './check.ts';
import type { ReplayOptions } from './replay.ts';
import { replayHelp } from './replay-help.ts';
import type { RunningServer } from './serve.ts';

/** Where a command writes, and the environment it reads. */
export type CliIo = {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
};

/** What a command left for main.ts: an exit code, or a running server to stop on a signal. */
export type CliOutcome = { exitCode: number } | { running: RunningServer };

/** The default --config: $ICALPUSH_CONFIG, then ./proxy.yaml. */
export function defaultConfigPath(env: Record<string, string | undefined>): string {
  return env.ICALPUSH_CONFIG || './proxy.yaml';
}

/** Parses `argv` (without node and script) and runs the chosen command. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<CliOutcome> {
  let outcome: CliOutcome = { exitCode: 0 };
  // The default is resolved when the command runs: commander would print it a second time.
  const configHelp = 'configuration file (default: $ICALPUSH_CONFIG, then ./proxy.yaml)';
  const program = new Command()
    .name('icalpush')
    .description(pkg.description)
    .version(pkg.version, '-V, --version', 'print the version')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride();

  program
    .command('serve')
    .description('run the sidecar until SIGINT/SIGTERM')
    .option('-c, --config <file>', configHelp)
    .action(async (options: { config?: string }) => {
      // Each command's modules are loaded when it runs: the whole app is more than `check` needs, and `check`
      // is timed on a platform's whole map.
      const { runServe } = await import('./serve.ts');
      outcome = await runServe(options.config ?? defaultConfigPath(io.env), io);
    });

  program
    .command('check')
    .description('validate a configuration and print a summary, or every problem found')
    .option('-c, --config <file>', configHelp)
    .action(async (options: { config?: string }) => {
      outcome = { exitCode: await runCheck(options.config ?? defaultConfigPath(io.env), io) };
    });

  program
    .command('notify')
    .description('tell the running sidecar that LISTING changed now, so its peers are notified')
    .argument('<listing>', 'listing id from the connection map')
    .option('-c, --config <file>', configHelp)
    .action(async (listing: string, options: { config?: string }) => {
      const { runNotify } = await import('./notify.ts');
      outcome = { exitCode: await runNotify(listing, options.config ?? defaultConfigPath(io.env), io) };
    });

  program
    .command('reload')
    .description('ask the running sidecar to re-read its configuration and listings file')
    .option('-c, --config <file>', configHelp)
    .action(async (options: { config?: string }) => {
      const { runReload } = await import('./reload.ts');
      outcome = { exitCode: await runReload(options.config ?? defaultConfigPath(io.env), io) };
    });

  program
    .command('status')
    .description('show what the running sidecar is doing: the overview, or one listing with --listing')
    .option('-l, --listing <id>', 'one listing: its peers, pending notifications and decision timeline')
    .option('--json', 'print the sidecar\'s JSON as it answered it')
    .option('-c, --config <file>', configHelp)
    .addHelpText('after', statusHelp)
    .action(async (options: { listing?: string; json?: boolean; config?: string }) => {
      const { runStatus } = await import('./status.ts');
      outcome = { exitCode: await runStatus(options, options.config ?? defaultConfigPath(io.env), io) };
    });

  program
    .command('replay')
    .description('run the push decision model over captured exports, one line per step')
    .argument('<file...>', 'export files of the listing\'s own feed, in capture order')
    .option('--at <time>', 'capture time of each FILE, one per file in order (ISO 8601: 2026-08-22T20:12:00Z)',
      collect)
    .option('--timezone <zone>', 'the listing\'s IANA time zone (default: the conservative rule)')
    .option('--peer <file>', 'a peer\'s export of the listing, evidence at every step (repeatable)', collect)
    .option('--hold-span <duration>', 'how long a drop is held before it applies (0: at once)', '2h')
    .option('--json', 'one JSON object per step: { file, ...decision }')
    .addHelpText('after', replayHelp)
    // Usage errors exit 2 here (replay's own exit 1 means a file could not be read).
    .exitOverride((err) => {
      if (err.exitCode !== 0) err.exitCode = 2;
      throw err;
    })
    .action(async (files: string[], options: ReplayOptions) => {
      const { runReplay } = await import('./replay.ts');
      outcome = { exitCode: await runReplay(files, options, io) };
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    // commander's own exits (--help, --version, usage errors) arrive here via exitOverride.
    const exitCode = (err as { exitCode?: number }).exitCode;
    if (typeof exitCode === 'number') return { exitCode };
    throw err;
  }
  return outcome;
}

const statusHelp = `
Reads GET /_icalpush/overview (or /_icalpush/listings/ID) of the sidecar at the config's \`listen\`, with its
admin.token. Listing times are in the listing's time zone (UTC when it has none).
Exit 0 shown, 1 not reachable, refused (401/403) or not a listing of the sidecar, 2 bad config.
`;

// A repeatable option's values, in order.
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The line main.ts prints for an error nothing else handled: `icalpush: <code or name>: <message>`,
 * one line an operator can paste; the stack only with ICALPUSH_DEBUG=1, for whoever fixes the bug.
 */
export function fatalLine(err: unknown, env: Record<string, string | undefined>, context?: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  const name = typeof code === 'string' ? code : err instanceof Error ? err.name : typeof err;
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
  const line = `icalpush: ${context === undefined ? '' : `${context}: `}${name}: ${message}\n`;
  const stack = env.ICALPUSH_DEBUG === '1' && err instanceof Error ? err.stack : undefined;
  return stack === undefined ? line : `${line}${stack}\n`;
}
