// Entry point of `npm run demo`; see demo.ts. Takes no options: `--help` says what it does.
import { runDemo } from './demo.ts';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write([
    'Usage: npm run demo',
    '',
    'Starts, on loopback, three simulated booking platforms (alpha, beta, gamma), each behind its own',
    'icalpush, makes a booking on alpha, and prints how fast the others were told and re-imported it,',
    'against what hourly polling would give. Needs no config and no network; exits 0 when both other',
    'platforms imported the stay and nothing echoed back.',
    '',
  ].join('\n'));
} else if (args.length > 0) {
  process.stderr.write(`npm run demo takes no arguments (got ${args.join(' ')}); see npm run demo -- --help\n`);
  process.exitCode = 2;
} else {
  const result = await runDemo((line) => process.stdout.write(`${line}\n`));
  process.exitCode = result.ok ? 0 : 1;
}
