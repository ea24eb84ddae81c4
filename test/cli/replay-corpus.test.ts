// `icalpush replay` over real platform captures in the shared corpus (../shared/corpus from the repo root,
// see its README for where each file comes from); skipped where the corpus is not checked out. The files
// are read in place, never copied into the project.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.ts';
import type { ReplayLine } from '../../src/cli/replay.ts';

const corpus = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const skip = !existsSync(corpus);

async function replayJson(...args: string[]): Promise<ReplayLine[]> {
  const out = { stdout: '', stderr: '' };
  const sink = (key: keyof typeof out) => new Writable({
    write(chunk: Buffer, _encoding, done) {
      out[key] += chunk.toString('utf8');
      done();
    },
  });
  const outcome = await runCli(['replay', '--json', ...args], { stdout: sink('stdout'), stderr: sink('stderr'), env: {} });
  assert.ok('exitCode' in outcome);
  assert.equal(outcome.exitCode, 0, out.stderr);
  return out.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as ReplayLine);
}

test('Booking.com hourly pair differing only in DTSTAMP: first read, then the same nights', { skip }, async () => {
  const lines = await replayJson(
    join(corpus, 'str-booking/booking-com_dtstamp-churn_t0_2026-08-22T2012Z.ics'),
    join(corpus, 'str-booking/booking-com_dtstamp-churn_t1_2026-08-22T2112Z.ics'),
  );
  assert.deepEqual(lines.map((line) => [line.kind, line.rule, line.at]), [
    ['no-night-change', 'first-read', '2026-08-22T20:12:00.000Z'],
    ['no-night-change', 'nights-unchanged', '2026-08-22T21:12:00.000Z'],
  ]);
});

test('Airbnb export read at its capture date and again a day later: no primary', { skip }, async () => {
  // Same bytes a day later: its far "Not available" block ends at the capture date + 365 (the booking
  // window's edge), which did not move in this file; nothing notifies.
  const file = join(corpus, 'str-airbnb/airbnb-1.0_crlf_dtstamp_2025-10-23.ics');
  for (const zone of [[], ['--timezone', 'America/New_York']]) {
    const lines = await replayJson(...zone, file, file, '--at', '2025-10-23T12:00:00Z', '--at', '2025-10-24T12:00:00Z');
    assert.deepEqual(lines.map((line) => [line.kind, line.rule]), [
      ['no-night-change', 'first-read'],
      ['no-night-change', 'nights-unchanged'],
    ]);
  }
});
