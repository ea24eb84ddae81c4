// `icalpush replay`: the push decision model over captured exports (test/fixtures/replay/README.md says
// what each capture reproduces), run through the command line as main.ts runs it, output captured.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.ts';
import { fileNameTime, instantOf, type ReplayLine } from '../../src/cli/replay.ts';

const fixtures = fileURLToPath(new URL('../fixtures/replay/', import.meta.url));
const fixture = (name: string) => join(fixtures, name);

async function replay(...args: string[]) {
  const out = { stdout: '', stderr: '' };
  const sink = (key: keyof typeof out) => new Writable({
    write(chunk: Buffer, _encoding, done) {
      out[key] += chunk.toString('utf8');
      done();
    },
  });
  const outcome = await runCli(['replay', ...args], { stdout: sink('stdout'), stderr: sink('stderr'), env: {} });
  assert.ok('exitCode' in outcome);
  const lines = out.stdout === '' ? [] : out.stdout.trimEnd().split('\n');
  return { code: outcome.exitCode, ...out, lines };
}

async function replayJson(...args: string[]): Promise<ReplayLine[]> {
  const { code, stderr, lines } = await replay('--json', ...args);
  assert.equal(code, 0, stderr);
  return lines.map((line) => JSON.parse(line) as ReplayLine);
}

const steps = (lines: ReplayLine[]) => lines.map((line) => `${line.kind} (${line.rule})`);

const midnightTrim = [
  'booking-com_midnight-trim_t0_2026-11-30T2255Z.ics', 'booking-com_midnight-trim_t1_2026-11-30T2305Z.ics',
].map(fixture);
const rolling = [
  'airbnb_rolling-block_t0_2026-03-10.ics', 'airbnb_rolling-block_t1_2026-03-11.ics',
  'airbnb_far-future-booking_2026-03-11T1500Z.ics',
].map(fixture);
const peer = fixture('vrbo_shows-far-booking_2026-03-11T1450Z.ics');
const emptyExport = [
  'booking-com_empty-export_t0_2026-08-22T2012Z.ics', 'booking-com_empty-export_t1_2026-08-22T2112Z.ics',
  'booking-com_empty-export_t2_2026-08-22T2212Z.ics',
].map(fixture);
const [emptyT0, emptyT1, emptyT2] = emptyExport as [string, string, string];
const cancellation = [
  'booking-com_cancellation_t0_2026-09-01T0800Z.ics', 'booking-com_cancellation_t1_2026-09-01T0830Z.ics',
].map(fixture);

// Each capture, without a zone (the conservative rule) and in the listing's zone.
const scenarios: { name: string; args: string[]; utc: string[]; rome: string[] }[] = [
  {
    // Read 5 minutes after Rome's midnight, within the clock skew allowed (decide/today.ts): the trimmed
    // night passed in either case.
    name: 'a stay re-keyed and trimmed at Rome\'s midnight passes, with or without a zone',
    args: midnightTrim,
    utc: ['no-night-change (first-read)', 'no-night-change (night-passing)'],
    rome: ['no-night-change (first-read)', 'no-night-change (night-passing)'],
  },
  {
    name: 'Airbnb\'s far "Not available" block moving by a day is a roll; a booking 8 months out is primary',
    args: rolling,
    utc: ['no-night-change (first-read)', 'roll (window-roll)', 'primary (unexplained-nights)'],
    rome: ['no-night-change (first-read)', 'roll (window-roll)', 'primary (unexplained-nights)'],
  },
  {
    name: 'a booking a peer shows is imported',
    args: ['--peer', peer, ...rolling],
    utc: ['no-night-change (first-read)', 'roll (window-roll)', 'imported (peers-explain)'],
    rome: ['no-night-change (first-read)', 'roll (window-roll)', 'imported (peers-explain)'],
  },
  {
    name: 'an empty export is held; the restored export is no change',
    args: emptyExport,
    utc: ['no-night-change (first-read)', 'held (drop-held)', 'no-night-change (nights-unchanged)'],
    rome: ['no-night-change (first-read)', 'held (drop-held)', 'no-night-change (nights-unchanged)'],
  },
  {
    name: 'a cancelled stay is primary',
    args: cancellation,
    utc: ['no-night-change (first-read)', 'primary (unexplained-nights)'],
    rome: ['no-night-change (first-read)', 'primary (unexplained-nights)'],
  },
];

for (const scenario of scenarios) {
  test(`${scenario.name} (no zone)`, async () => {
    assert.deepEqual(steps(await replayJson(...scenario.args)), scenario.utc);
  });
  test(`${scenario.name} (--timezone Europe/Rome)`, async () => {
    assert.deepEqual(steps(await replayJson('--timezone', 'Europe/Rome', ...scenario.args)), scenario.rome);
  });
}

test('--json lines are { file, ...decision } with the file\'s base name and its capture time', async () => {
  const [first, second] = await replayJson(...cancellation);
  assert.equal(first?.file, 'booking-com_cancellation_t0_2026-09-01T0800Z.ics');
  assert.equal(first?.at, '2026-09-01T08:00:00.000Z');
  assert.deepEqual(second, {
    file: 'booking-com_cancellation_t1_2026-09-01T0830Z.ics',
    kind: 'primary', rule: 'unexplained-nights', at: '2026-09-01T08:30:00.000Z',
    nights: { added: [], removed: ['2026-10-10/2026-10-17'] }, evidence: [], notified: [],
    why: '7 nights became free (2026-10-10/2026-10-17) no peer explains',
  });
});

test('the night trimmed without a zone is reported as passed', async () => {
  const [, trimmed] = await replayJson(...midnightTrim);
  assert.ok(trimmed && trimmed.kind !== 'unreadable');
  assert.deepEqual(trimmed.passed, { added: [], removed: ['2026-11-30/2026-12-01'] });
  assert.deepEqual(trimmed.nights, { added: [], removed: [] });
});

test('the roll and the imported booking carry their nights; the evidence names the peer file and its time', async () => {
  const [, roll, imported] = await replayJson('--peer', peer, ...rolling);
  assert.ok(roll && roll.kind !== 'unreadable' && imported && imported.kind !== 'unreadable');
  assert.deepEqual(roll.nights, { added: ['2027-03-10/2027-03-11'], removed: ['2026-12-05/2026-12-06'] });
  assert.deepEqual(imported.evidence, [{ peer: 'vrbo_shows-far-booking_2026-03-11T1450Z.ics',
    night: '2026-11-20/2026-11-25', shows: 'busy', readAt: '2026-03-11T14:50:00.000Z' }]);
});

test('a peer without a time in its name counts as read at each step', async () => {
  const [, , imported] = await replayJson('--peer', fixture('vrbo_shows-far-booking_undated.ics'), ...rolling);
  assert.ok(imported && imported.kind !== 'unreadable');
  assert.deepEqual(imported.evidence.map((e) => [e.peer, e.readAt]),
    [['vrbo_shows-far-booking_undated.ics', '2026-03-11T15:00:00.000Z']]);
});

test('a peer that cannot be read stops the replay: exit 1, nothing replayed', async () => {
  const { code, stdout, stderr } = await replay('--peer', fixture('vrbo_missing.ics'), ...rolling);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /^\S*vrbo_missing\.ics: cannot read the file \(ENOENT\); .*nothing replayed\n$/);
});

test('a drop still shown after --hold-span applies', async () => {
  const lines = await replayJson(emptyT0, emptyT1, emptyT1, '--at', '2026-08-22T20:12:00Z',
    '--at', '2026-08-22T21:12:00Z', '--at', '2026-08-22T23:12:00Z');
  assert.deepEqual(steps(lines), ['no-night-change (first-read)', 'held (drop-held)', 'primary (unexplained-nights)']);
  assert.match(lines[1]?.why ?? '', /^the read lost 5 of 5 events at once: held, applied only if a read 120 min/);
  assert.deepEqual((lines[1] as { drop?: unknown }).drop, { measure: 'events', lost: 5, of: 5 });
});

test('a drop held is measured from its first held read, not the latest', async () => {
  const lines = await replayJson(emptyT0, emptyT1, emptyT1, emptyT1, '--hold-span', '90m',
    '--at', '2026-08-22T20:12:00Z', '--at', '2026-08-22T21:12:00Z', '--at', '2026-08-22T22:12:00Z',
    '--at', '2026-08-22T22:42:00Z');
  assert.deepEqual(steps(lines),
    ['no-night-change (first-read)', 'held (drop-held)', 'held (drop-held)', 'primary (unexplained-nights)']);
});

test('a read that ends the drop forgets it: the next drop is held afresh', async () => {
  const lines = await replayJson(emptyT0, emptyT1, emptyT2, emptyT1, '--at', '2026-08-22T20:12:00Z',
    '--at', '2026-08-22T21:12:00Z', '--at', '2026-08-22T22:12:00Z', '--at', '2026-08-22T23:30:00Z');
  assert.deepEqual(steps(lines), ['no-night-change (first-read)', 'held (drop-held)',
    'no-night-change (nights-unchanged)', 'held (drop-held)']);
});

test('--hold-span 0 applies a drop at once', async () => {
  const lines = await replayJson('--hold-span', '0', ...emptyExport);
  assert.deepEqual(steps(lines),
    ['no-night-change (first-read)', 'primary (unexplained-nights)', 'primary (unexplained-nights)']);
});

test('a cut-off export and a missing file are reported, skipped, and exit 1; the baseline stays', async () => {
  const cutOff = fixture('booking-com_cut-off_2026-08-22T2142Z.ics');
  const missing = fixture('booking-com_missing_2026-08-22T2300Z.ics');
  const { code, stdout, stderr } = await replay('--json', emptyT0, cutOff, emptyT2, missing);
  assert.equal(code, 1);
  const lines = stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as ReplayLine);
  assert.deepEqual(steps(lines), ['no-night-change (first-read)', 'unreadable (not-calendar)',
    'no-night-change (nights-unchanged)', 'unreadable (file-unreadable)']);
  assert.equal(lines[1]?.at, '2026-08-22T21:42:00.000Z');
  const errors = stderr.trimEnd().split('\n');
  assert.equal(errors.length, 2);
  assert.match(errors[0] ?? '', /booking-com_cut-off_2026-08-22T2142Z\.ics: not a complete calendar/);
  assert.match(errors[1] ?? '', /booking-com_missing_2026-08-22T2300Z\.ics: cannot read the file \(ENOENT\)/);
});

test('text output: one aligned line per step with time, file, kind (rule), nights each way and why', async () => {
  const { code, lines } = await replay(...cancellation);
  assert.equal(code, 0);
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '',
    /^2026-09-01T08:00:00Z {2}booking-com_cancellation_t0_2026-09-01T0800Z\.ics {2}no-night-change \(first-read\) +\+0 -0 +first read: the baseline$/);
  assert.match(lines[1] ?? '',
    /^2026-09-01T08:30:00Z {2}booking-com_cancellation_t1_2026-09-01T0830Z\.ics {2}primary \(unexplained-nights\) +\+0 -7 +7 nights became free \(2026-10-10\/2026-10-17\) no peer explains$/);
  const column = (line: string, text: string) => line.indexOf(text);
  assert.equal(column(lines[0] ?? '', '+0 -0'), column(lines[1] ?? '', '+0 -7'));
  assert.equal(column(lines[0] ?? '', 'first read'), column(lines[1] ?? '', '7 nights'));
});

test('--at gives the capture times, in place of the file names\'', async () => {
  const lines = await replayJson(...cancellation, '--at', '2026-09-02T08:00:00Z', '--at', '2026-09-02T10:00:00+02:00');
  assert.deepEqual(lines.map((line) => line.at), ['2026-09-02T08:00:00.000Z', '2026-09-02T08:00:00.000Z']);
});

test('a bad --timezone is one line naming the option, exit 2', async () => {
  const { code, stdout, stderr } = await replay('--timezone', 'Mars/Olympus', ...cancellation);
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /^--timezone: not an IANA time zone name .*Mars\/Olympus\n$/);
});

test('--timezone takes the canonical spelling of a zone', async () => {
  const lines = await replayJson('--timezone', 'europe/rome', ...midnightTrim);
  assert.deepEqual(steps(lines), ['no-night-change (first-read)', 'no-night-change (night-passing)']);
});

test('a file without a time in its name and no --at is an error naming it, exit 2', async () => {
  const { code, stdout, stderr } = await replay(fixture('listing-7.ics'));
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /listing-7\.ics: no capture time: give --at/);
});

test('capture times going backwards are an error, exit 2', async () => {
  const { code, stderr } = await replay(...[...cancellation].reverse());
  assert.equal(code, 2);
  assert.match(stderr, /booking-com_cancellation_t0_2026-09-01T0800Z\.ics: captured at 2026-09-01T08:00:00\.000Z, before/);
});

test('--at must be given once per file, as ISO 8601 instants', async () => {
  const mismatch = await replay(...cancellation, '--at', '2026-09-01T08:00:00Z');
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /^--at: 1 value for 2 files/);
  const bad = await replay(...cancellation, '--at', '2026-09-01', '--at', '2026-09-01T09:00:00Z');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^--at: not an ISO 8601 instant .*: 2026-09-01\n$/);
});

test('a bad --hold-span is a usage error', async () => {
  const { code, stderr } = await replay('--hold-span', 'soon', ...cancellation);
  assert.equal(code, 2);
  assert.match(stderr, /^--hold-span: not a duration/);
});

test('commander\'s usage errors exit 2; --help exits 0 and documents the file-name times', async () => {
  assert.equal((await replay()).code, 2);
  assert.equal((await replay('--bogus', ...cancellation)).code, 2);
  const help = await replay('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /booking-com_t0_2026-08-22T2012Z\.ics +read at 2026-08-22T20:12:00Z/);
  assert.match(help.stdout, /airbnb_2025-10-23\.ics +read at 2025-10-23T12:00:00Z/);
  for (const option of ['--at <time>', '--timezone <zone>', '--peer <file>', '--hold-span <duration>', '--json']) {
    assert.ok(help.stdout.includes(option), option);
  }
});

test('file-name times: the last date, with an optional UTC time in four spellings; a date alone is noon', () => {
  const utc = (iso: string) => Date.parse(iso);
  assert.equal(fileNameTime('booking-com_t0_2026-08-22T2012Z.ics'), utc('2026-08-22T20:12:00Z'));
  assert.equal(fileNameTime('/x/2019-01-01/a_2026-08-22T201230Z.ics'), utc('2026-08-22T20:12:30Z'));
  assert.equal(fileNameTime('a_2026-08-22T20:12Z.ics'), utc('2026-08-22T20:12:00Z'));
  assert.equal(fileNameTime('a_2026-08-22T20:12:30Z.ics'), utc('2026-08-22T20:12:30Z'));
  assert.equal(fileNameTime('airbnb_2025-10-23.ics'), utc('2025-10-23T12:00:00Z'));
  assert.equal(fileNameTime('from_2025-10-23_to_2025-11-02.ics'), utc('2025-11-02T12:00:00Z'));
  assert.equal(fileNameTime('airbnb-1.0_crlf.ics'), undefined);
});

test('file-name times that are there but not usable say why', () => {
  assert.match(String(fileNameTime('a_2026-08-22T2012.ics')), /no Z/);
  assert.match(String(fileNameTime('a_2026-08-22T20Z.ics')), /not THHMM/);
  assert.match(String(fileNameTime('a_2026-02-30.ics')), /not a calendar date/);
  assert.match(String(fileNameTime('a_2026-08-22T2512Z.ics')), /not a time of day/);
});

test('--at values: instants with Z or an offset, real dates only', () => {
  assert.equal(instantOf('2026-08-22T20:12:00Z'), Date.parse('2026-08-22T20:12:00Z'));
  assert.equal(instantOf('2026-08-22T22:12+02:00'), Date.parse('2026-08-22T20:12:00Z'));
  assert.equal(instantOf('2026-08-22T20:12:00.250Z'), Date.parse('2026-08-22T20:12:00.250Z'));
  for (const bad of ['2026-08-22', '2026-08-22T20:12:00', '2026-02-30T10:00:00Z', '2026-08-22T24:00:00Z', 'now']) {
    assert.equal(instantOf(bad), undefined, bad);
  }
});
