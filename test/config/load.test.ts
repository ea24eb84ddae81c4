// Loading and validating configuration files: one fixture per class of mistake, each with
// the key path, line and message an operator would see.
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import {
  type ConfigProblem,
  formatProblems,
  loadConfigFile,
  parseConfigText,
} from '../../src/config/load.ts';
import { ownFeedTarget } from '../../src/config/listings.ts';

const fixtures = resolve(import.meta.dirname, '../fixtures/config');
const fixture = (name: string) => join(fixtures, name);

async function problemsOf(name: string, env: Record<string, string> = {}) {
  const result = await loadConfigFile(fixture(name), env);
  assert.equal(result.ok, false, `${name} should be refused`);
  return result.ok ? [] : result.problems;
}

function assertProblem(
  problems: readonly ConfigProblem[],
  expected: { path: string; line: number | undefined; message: RegExp },
) {
  const found = problems.find((p) => p.path === expected.path && expected.message.test(p.message));
  assert.ok(
    found,
    `no problem at ${expected.path} matching ${expected.message}:\n${show(problems)}`,
  );
  assert.equal(found.line, expected.line, `line of ${expected.path}`);
}

const show = (problems: readonly ConfigProblem[]) => formatProblems(problems, 'fixture');

const cases: Array<{
  fixture: string;
  path: string;
  line: number | undefined;
  message: RegExp;
}> = [
  {
    fixture: 'unknown-top-level-key.yaml',
    path: 'bogus',
    line: 4,
    message: /^unknown key \(known keys: listen, upstream/,
  },
  {
    fixture: 'unknown-nested-key.yaml',
    path: 'push.debunce',
    line: 5,
    message: /^unknown key \(did you mean "debounce"\?\)$/,
  },
  { fixture: 'wrong-type-string-for-list.yaml', path: 'feeds', line: 2, message: /must be a list/ },
  {
    fixture: 'wrong-type-number-for-string.yaml',
    path: 'push.userAgent',
    line: 5,
    message: /^must be a string \(got a whole number\)$/,
  },
  {
    fixture: 'bad-duration-unknown-unit.yaml',
    path: 'push.debounce',
    line: 5,
    message: /^must be a duration like 500ms, 30s, 5m, 1h or 7d$/,
  },
  {
    fixture: 'bad-byte-size-unit.yaml',
    path: 'snapshots.maxBodyBytes',
    line: 5,
    message: /^must be a size like 512KiB, 20MiB or 1GiB, or a number of bytes$/,
  },
  {
    fixture: 'hold-fraction-above-one.yaml',
    path: 'snapshots.hold.fraction',
    line: 6,
    message: /1/,
  },
  {
    fixture: 'feed-max-age-bare-number.yaml',
    path: 'feeds[0].maxAge',
    line: 4,
    message: /a bare number has no unit/,
  },
  {
    fixture: 'bad-duration-negative.yaml',
    path: 'push.watch',
    line: 5,
    message: /must be a duration/,
  },
  {
    fixture: 'bad-duration-fraction.yaml',
    path: 'timeouts.upstream',
    line: 5,
    message: /must be a duration/,
  },
  {
    fixture: 'bad-duration-bare-number.yaml',
    path: 'push.debounce',
    line: 5,
    message: /must be a duration .*a bare number has no unit/,
  },
  {
    fixture: 'push-retry-for-zero.yaml',
    path: 'push.retryFor',
    line: 5,
    message: /^must be a duration like 500ms, 30s, 5m, 1h or 7d$/,
  },
  {
    fixture: 'bad-url-ftp.yaml',
    path: 'listings.beach-house.peers[0].url',
    line: 7,
    message: /^must be an http:\/\/ or https:\/\/ URL$/,
  },
  {
    fixture: 'bad-url-not-a-url.yaml',
    path: 'upstream',
    line: 1,
    message: /^must be an http:\/\/ or https:\/\/ URL$/,
  },
  {
    fixture: 'upstream-with-path.yaml',
    path: 'upstream',
    line: 1,
    message: /must be an origin .*without path/,
  },
  {
    fixture: 'feed-pattern-without-listing.yaml',
    path: 'feeds[1].path',
    line: 4,
    message: /^must contain \{listing\}$/,
  },
  {
    fixture: 'feed-pattern-with-two-listings.yaml',
    path: 'feeds[0].path',
    line: 3,
    message: /^must contain \{listing\} once$/,
  },
  {
    fixture: 'trigger-without-listing.yaml',
    path: 'push.triggers[0].path',
    line: 7,
    message: /must contain \{listing\}/,
  },
  {
    fixture: 'missing-variable.yaml',
    path: 'admin.token',
    line: 5,
    message: /\$\{ICALPUSH_TEST_UNSET_TOKEN\}.*ICALPUSH_TEST_UNSET_TOKEN is not set/,
  },
  {
    fixture: 'listing-feed-not-matching-pattern.yaml',
    path: 'listings.beach-house.feed',
    line: 6,
    message: /must match a feeds pattern with \{listing\} = beach-house/,
  },
  {
    fixture: 'listing-without-feed-under-secret-pattern.yaml',
    path: 'listings.lake-cabin',
    line: 7,
    message: /^needs an explicit feed: the first feeds pattern has \{secret\}$/,
  },
  {
    fixture: 'duplicate-peer-url.yaml',
    path: 'listings.beach-house.peers[1].url',
    line: 10,
    message: /^duplicates peers\[0\]\.url$/,
  },
  {
    fixture: 'empty-admin-token.yaml',
    path: 'admin.token',
    line: 5,
    message: /must not be empty/,
  },
  {
    fixture: 'invalid-yaml-syntax.yaml',
    path: '',
    line: 6,
    message: /^invalid YAML: .*same column/,
  },
  { fixture: 'empty-file.yaml', path: '', line: undefined, message: /the file is empty/ },
  {
    fixture: 'top-level-not-a-mapping.yaml',
    path: '',
    line: 1,
    message: /top level must be a mapping/,
  },
  {
    fixture: 'redis-store-bad-database.yaml',
    path: 'store',
    line: 4,
    message: /^a Redis URL's path is a database number \(\/0 to \/99\), not \/cache$/,
  },
];

for (const c of cases) {
  test(`${c.fixture}: ${c.path || '(file)'} line ${c.line ?? '-'} ${c.message.source}`, async () => {
    const problems = await problemsOf(c.fixture);
    assertProblem(problems, c);
  });
}

test('each fixture reports only its own mistake', async () => {
  for (const c of cases) {
    const problems = await problemsOf(c.fixture);
    assert.equal(problems.length, 1, `${c.fixture}:\n${show(problems)}`);
  }
});

test('a missing file is a problem naming the reason, not an exception', async () => {
  const result = await loadConfigFile(fixture('does-not-exist.yaml'), {});
  assert.equal(result.ok, false);
  assert.deepEqual(!result.ok && result.problems, [
    { path: '', message: 'cannot read the configuration file: no such file' },
  ]);
});

test('a directory instead of a file is a problem too', async () => {
  const result = await loadConfigFile(fixtures, {});
  assert.equal(result.ok, false);
  assert.match(!result.ok ? (result.problems[0]?.message ?? '') : '', /is a directory/);
});

test('every problem of a file is reported in one run', async () => {
  const problems = await problemsOf('many-errors.yaml');
  const expected = [
    { path: 'listen', line: 2, message: /must be host:port/ },
    { path: 'upstream', line: 3, message: /must be an http:\/\/ or https:\/\/ URL/ },
    { path: 'feeds[0].path', line: 5, message: /must contain \{listing\}/ },
    { path: 'listings.beach-house.feed', line: 8, message: /ICALPUSH_TEST_UNSET_TOKEN is not set/ },
    {
      path: 'listings.beach-house.peers[0].notfy',
      line: 11,
      message: /did you mean "notify"/,
    },
    { path: 'push.debounce', line: 13, message: /must be a duration/ },
    { path: 'push.userAgent', line: 14, message: /must be a string/ },
    { path: 'hooks.maxPerFeed', line: 16, message: /must be at least 1/ },
    { path: 'log.level', line: 18, message: /must be one of fatal, error, warn, info/ },
    { path: 'admin.token', line: 20, message: /must not be empty/ },
  ];
  for (const e of expected) assertProblem(problems, e);
  assert.equal(problems.length, expected.length, show(problems));
  const lines = problems.map((p) => p.line ?? 0);
  assert.deepEqual(
    lines,
    lines.toSorted((a, b) => a - b),
    'problems come in file order',
  );
});

test('a {secret} in a later feeds pattern needs no explicit feed: defaults come from the first', () => {
  const result = parseConfigText(
    [
      'upstream: http://127.0.0.1:9000',
      'feeds:',
      '  - path: /calendar/{listing}.ics',
      '  - path: /ical/{listing}/{secret}.ics',
      'listings:',
      '  lake-cabin: {}',
      '  beach-house:',
      '    feed: /ical/beach-house/hunter2.ics',
    ].join('\n'),
    { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' },
  );
  assert.ok(result.ok, result.ok ? '' : show(result.problems));
  assert.equal(ownFeedTarget(result.config, 'lake-cabin'), '/calendar/lake-cabin.ics');
  assert.equal(ownFeedTarget(result.config, 'beach-house'), '/ical/beach-house/hunter2.ics');
});

test('no own feed is derived from a first feeds pattern with {secret}', () => {
  const config = { feeds: [{ path: '/ical/{listing}/{secret}.ics', maxAge: 0 }], listings: { x: { peers: [], headers: {} } } };
  assert.equal(ownFeedTarget(config, 'x'), undefined);
});

test('a cross-key check is reported together with type errors elsewhere', () => {
  const result = parseConfigText(
    [
      'upstream: http://127.0.0.1:9000',
      'feeds:',
      '  - path: /calendar/{listing}.ics',
      'push:',
      '  userAgent: [not, a, string]',
      'listings:',
      '  beach-house:',
      '    feed: /calendar/lake-cabin.ics',
    ].join('\n'),
    { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' },
  );
  assert.equal(result.ok, false);
  const problems = result.ok ? [] : result.problems;
  assertProblem(problems, { path: 'push.userAgent', line: 5, message: /must be a string/ });
  assertProblem(problems, {
    path: 'listings.beach-house.feed',
    line: 8,
    message: /must match a feeds pattern/,
  });
});

test('a missing required key is reported at the line of its parent mapping', () => {
  const result = parseConfigText(
    [
      'upstream: http://127.0.0.1:9000',
      'feeds:',
      '  - path: /calendar/{listing}.ics',
      'refresh:',
      '  method: POST',
    ].join('\n'),
    { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' },
  );
  assert.deepEqual(!result.ok && result.problems, [
    { path: 'refresh.url', line: 4, message: 'is required' },
  ]);
});

test('a missing top-level key is reported as required', () => {
  const result = parseConfigText('listen: 127.0.0.1:8080\n', {
    env: {},
    sourceName: 'proxy.yaml',
    baseDir: '/etc/icalpush',
  });
  assert.deepEqual(!result.ok && result.problems.map((p) => `${p.path}: ${p.message}`), [
    'upstream: is required',
    'feeds: is required',
  ]);
});

test('${VAR:-default} uses the default when the variable is unset or empty', async () => {
  for (const env of [{}, { ICALPUSH_TEST_TOKEN: '' }]) {
    const result = await loadConfigFile(fixture('variable-default.yaml'), env);
    assert.ok(result.ok);
    assert.equal(
      result.config.listings['beach-house']?.feed,
      '/calendar/beach-house.ics?t=fallback-token',
    );
  }
});

test('${VAR:-default} uses the variable when it is set', async () => {
  const result = await loadConfigFile(fixture('variable-default.yaml'), {
    ICALPUSH_TEST_TOKEN: 's3cret',
  });
  assert.ok(result.ok);
  assert.equal(result.config.listings['beach-house']?.feed, '/calendar/beach-house.ics?t=s3cret');
});

test('$${ writes a literal ${', async () => {
  const result = await loadConfigFile(fixture('literal-dollar-brace.yaml'), {});
  assert.ok(result.ok);
  assert.equal(result.config.push.userAgent, 'iPP/0.1 ${not-a-variable}');
});

test('keys are never substituted', () => {
  const result = parseConfigText(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\n${HOOKS}: 1\n',
    { env: { HOOKS: 'hooks' }, sourceName: 'proxy.yaml', baseDir: '/' },
  );
  assert.deepEqual(!result.ok && result.problems.map((p) => p.path), ['["${HOOKS}"]']);
});

test('a value that comes from an empty variable says so', () => {
  const result = parseConfigText(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nadmin:\n  token: ${TOKEN}\n',
    { env: { TOKEN: '' }, sourceName: 'proxy.yaml', baseDir: '/' },
  );
  assert.equal(result.ok, false);
  assert.match(
    !result.ok ? (result.problems[0]?.message ?? '') : '',
    /must not be empty.*\$\{TOKEN\}/,
  );
});

test('the validated config is deeply frozen', async () => {
  const result = await loadConfigFile(resolve(import.meta.dirname, '../../proxy.example.yaml'), {});
  assert.ok(result.ok);
  const { config } = result;
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.push));
  assert.ok(Object.isFrozen(config.feeds));
  assert.ok(Object.isFrozen(config.feeds[0]));
  assert.ok(Object.isFrozen(config.listings['beach-house']?.peers));
  assert.throws(() => {
    (config.push as { debounce: number }).debounce = 1;
  }, TypeError);
});

test('a relative store path resolves against the config file directory', async () => {
  const result = await loadConfigFile(fixture('relative-store.yaml'), {});
  assert.ok(result.ok);
  assert.equal(result.config.store, join(fixtures, 'state/icalpush.db'));
});

test('the default store path also resolves against the config file directory', () => {
  const result = parseConfigText(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\n',
    {
      env: {},
      sourceName: 'proxy.yaml',
      baseDir: '/etc/icalpush',
    },
  );
  assert.ok(result.ok);
  assert.equal(result.config.store, '/etc/icalpush/data/icalpush.db');
});

test('an absolute store path and memory are kept as written', () => {
  for (const store of ['/var/lib/icalpush/store.db', 'memory']) {
    const result = parseConfigText(
      `upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nstore: ${store}\n`,
      { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' },
    );
    assert.ok(result.ok);
    assert.equal(result.config.store, store);
  }
});

test('formatProblems writes path: message (file line N), one per line', () => {
  const text = formatProblems(
    [
      { path: '', message: 'cannot read the configuration file: no such file' },
      {
        path: 'push.debounce',
        line: 12,
        message: 'must be a duration like 500ms, 30s, 5m, 1h or 7d',
      },
    ],
    'proxy.yaml',
  );
  assert.equal(
    text,
    [
      'cannot read the configuration file: no such file (proxy.yaml)',
      'push.debounce: must be a duration like 500ms, 30s, 5m, 1h or 7d (proxy.yaml line 12)',
    ].join('\n'),
  );
});

test('listing ids that are not usable are named with a quoted path', () => {
  const result = parseConfigText(
    'upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nlistings:\n  "a/b": {}\n',
    { env: {}, sourceName: 'proxy.yaml', baseDir: '/' },
  );
  assert.deepEqual(!result.ok && result.problems, [
    {
      path: 'listings["a/b"]',
      line: 5,
      message: 'is not a usable listing id: use letters, digits, . _ ~ and -',
    },
  ]);
});

test('messages carry no zod wording', async () => {
  const problems = await problemsOf('many-errors.yaml');
  for (const p of problems) assert.doesNotMatch(p.message, /Invalid input|expected .*received/);
});

test('a redis:// store is kept as written, not resolved as a path; a bad one names what is wrong', () => {
  const text = (store: string) => ['upstream: http://127.0.0.1:9000', 'feeds:', '  - path: /c/{listing}.ics',
    `store: ${store}`].join('\n');
  const options = { env: {}, sourceName: 'proxy.yaml', baseDir: '/etc/icalpush' };
  for (const store of ['redis://127.0.0.1:6379', 'rediss://user:pw@redis.internal:6380/2', 'redis://redis']) {
    const result = parseConfigText(text(store), options);
    assert.ok(result.ok, result.ok ? '' : show(result.problems));
    assert.equal(result.config.store, store);
  }
  const bad: [string, RegExp][] = [
    ['redis://', /needs a host|not a valid Redis URL/],
    ['redis://host/1/2', /database number/],
    ['redis://host:6379/0?timeout=5', /no query/],
  ];
  for (const [store, message] of bad) {
    const result = parseConfigText(text(store), options);
    assert.ok(!result.ok, store);
    assert.match(show(result.problems), message, store);
  }
});
