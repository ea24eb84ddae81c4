// The zone keys (SPEC "Configuration", "Push": what today means): `listings.<id>.timezone` and
// `push.timezone` take IANA names, read as their canonical spelling; anything else (a typo, a fixed offset,
// a number) is a problem naming the key, its line and the bad value. One fixture per case
// (test/fixtures/config/timezone-*.yaml); `icalpush check` lists the problem as `path: what is wrong`.
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { type ConfigProblem, formatProblems, loadConfigFile, parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { run } from '../helpers/cli.ts';

const fixtures = resolve(import.meta.dirname, '../fixtures/config');
const fixture = (name: string) => join(fixtures, name);

// Each key, with where its fixtures put it: the key path, the line of the value, and how to read it back.
const keys = [
  {
    prefix: 'timezone-listing', path: 'listings.beach-house.timezone', line: 7,
    read: (config: Config) => config.listings['beach-house']?.timezone,
  },
  { prefix: 'timezone-push', path: 'push.timezone', line: 6, read: (config: Config) => config.push.timezone },
] as const;

async function configOf(name: string): Promise<Config> {
  const result = await loadConfigFile(fixture(name), {});
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems, name));
  return result.config;
}

async function problemsOf(name: string): Promise<ConfigProblem[]> {
  const result = await loadConfigFile(fixture(name), {});
  assert.equal(result.ok, false, `${name} should be refused`);
  return result.ok ? [] : result.problems;
}

/** What this runtime calls US/Pacific (ICU canonicalises links to their zone; some builds keep the link). */
const usPacific = new Intl.DateTimeFormat('en', { timeZone: 'US/Pacific' }).resolvedOptions().timeZone;

for (const key of keys) {
  test(`${key.path}: Europe/Rome is accepted as written`, async () => {
    assert.equal(key.read(await configOf(`${key.prefix}-rome.yaml`)), 'Europe/Rome');
  });

  test(`${key.path}: europe/rome is read as Europe/Rome`, async () => {
    assert.equal(key.read(await configOf(`${key.prefix}-lowercase.yaml`)), 'Europe/Rome');
  });

  test(`${key.path}: US/Pacific (a link) is accepted, in the runtime's canonical spelling`, async () => {
    const zone = key.read(await configOf(`${key.prefix}-us-pacific.yaml`));
    assert.equal(zone, usPacific);
    assert.ok(zone === 'America/Los_Angeles' || zone === 'US/Pacific', String(zone));
  });

  test(`${key.path}: a typo (Europe/Rom) is refused at its line, naming the bad value`, async () => {
    const problems = await problemsOf(`${key.prefix}-typo.yaml`);
    assert.equal(problems.length, 1, formatProblems(problems, 'fixture'));
    const [problem] = problems as [ConfigProblem];
    assert.equal(problem.path, key.path);
    assert.equal(problem.line, key.line);
    assert.match(problem.message, /IANA time zone/);
    assert.match(problem.message, /Europe\/Rom\b/);
  });

  test(`${key.path}: a fixed offset (+01:00) is refused: it ignores daylight saving time`, async () => {
    const problems = await problemsOf(`${key.prefix}-offset.yaml`);
    assert.deepEqual(problems.map((p) => [p.path, p.line]), [[key.path, key.line]]);
    assert.match(problems[0]?.message ?? '', /IANA time zone.*\+01:00/);
  });

  test(`${key.path}: a number is refused`, async () => {
    const problems = await problemsOf(`${key.prefix}-number.yaml`);
    assert.deepEqual(problems.map((p) => [p.path, p.line]), [[key.path, key.line]]);
    assert.match(problems[0]?.message ?? '', /IANA time zone name/);
  });
}

test('other spellings of an offset, unquoted in YAML, are refused too', () => {
  for (const value of ['+01:00', 'UTC+1', 'GMT+01:00', '+0100', '""', 'Europe/Rome/', '../Rome', 'Etc/GMT-1', 'etc/gmt+12']) {
    const result = parseConfigText([
      'upstream: http://127.0.0.1:9000',
      'feeds:',
      '  - path: /calendar/{listing}.ics',
      'listings:',
      '  beach-house:',
      `    timezone: ${value}`,
    ].join('\n'), { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' });
    assert.equal(result.ok, false, `${value} should be refused`);
    assert.deepEqual(!result.ok && result.problems.map((p) => [p.path, p.line]), [['listings.beach-house.timezone', 6]],
      value);
  }
});

test('a listing without a zone takes none from the config: push.timezone is the default, else the conservative rule',
  async () => {
    const config = await configOf('timezone-push-rome.yaml');
    assert.equal(config.listings['beach-house']?.timezone, undefined);
    assert.equal(config.push.timezone, 'Europe/Rome');
  });

for (const key of keys) {
  test(`check exits non-zero listing "${key.path}: …" for a bad zone`, async () => {
    const path = fixture(`${key.prefix}-typo.yaml`);
    const { code, stdout, stderr } = await run(['check', '--config', path]);
    assert.equal(code, 1, stdout);
    const line = stderr.split('\n').find((l) => l.startsWith(`${key.path}: `));
    assert.ok(line, stderr);
    assert.match(line, /IANA time zone.*Europe\/Rom\b/);
    assert.ok(line.endsWith(`(${path} line ${key.line})`), line);
    assert.doesNotMatch(stdout, /valid configuration/);
  });

  test(`check accepts a valid ${key.path}`, async () => {
    const { code, stdout, stderr } = await run(['check', '--config', fixture(`${key.prefix}-lowercase.yaml`)]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /valid configuration/);
  });
}
