// Entry point of `npm run demo`; see demo.ts.
import { runDemo } from './demo.ts';

const result = await runDemo((line) => process.stdout.write(`${line}\n`));
process.exitCode = result.ok ? 0 : 1;
