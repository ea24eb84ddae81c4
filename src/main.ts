#!/usr/bin/env node
// Entry point: argv → cli. The only place that exits the process or handles signals.
import { fatalLine, runCli } from './cli/program.ts';

const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };

// A bug that escapes every handler: one line (the stack with ICALPUSH_DEBUG=1), then the exit Node would make.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err: unknown) => {
    process.stderr.write(fatalLine(err, process.env, event));
    process.exit(1);
  });
}

// SPEC "Reload": SIGHUP re-reads the config of a running sidecar. One that comes before it listens (a config
// reloader during a pod's start) must not kill it, as SIGHUP's default would: the config being loaded is read now.
let onHangup = () => {
  process.stderr.write('SIGHUP before the sidecar listens: the configuration being started is the one read now\n');
};
process.on('SIGHUP', () => onHangup());

try {
  const outcome = await runCli(process.argv.slice(2), io);
  if ('exitCode' in outcome) {
    process.exitCode = outcome.exitCode;
  } else {
    const { running } = outcome;
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${signal}: shutting down\n`);
      // close() keeps to timeouts.shutdown; should anything still hang, the process does not.
      setTimeout(() => {
        process.stderr.write(`icalpush: SHUTTING_DOWN: not closed within ${running.shutdownMs} ms, exiting\n`);
        process.exit(1);
      }, running.shutdownMs + 2_000).unref();
      running.close().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(fatalLine(err, process.env, 'shutdown failed'));
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // The app logs what the reload did, or every problem and that the map in force is kept.
    onHangup = () => {
      if (!stopping) void running.reload();
    };
  }
} catch (err) {
  process.stderr.write(fatalLine(err, process.env));
  process.exit(1);
}
