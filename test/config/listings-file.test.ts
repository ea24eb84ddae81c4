// `listingsFile` (SPEC "Configuration"): the connection map in a CSV, YAML or JSON file of its own, merged with
// the inline listings. Each case is the file an operator writes and what they are told: the key path, the file
// and the line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type ConfigProblem, type ConfigResult, formatProblems, parseConfigText } from '../../src/config/load.ts';

const configText = (listingsFile: string, inline = '') => [
  'upstream: http://127.0.0.1:9000',
  'store: memory',
  'feeds:',
  '  - path: /calendar/{listing}.ics',
  `listingsFile: ${listingsFile}`,
  inline,
].join('\n');

/** Loads a config naming `name` whose text is `file`, from memory. */
function load(name: string, file: string | undefined, options: { inline?: string; env?: Record<string, string> } = {}) {
  return parseConfigText(configText(name, options.inline), {
    env: options.env ?? {},
    sourceName: 'proxy.yaml',
    baseDir: '/srv/icalpush',
    readFile(path) {
      assert.equal(path, `/srv/icalpush/${name.replace(/^\.\//, '')}`);
      if (file === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return file;
    },
  });
}

function listingsOf(result: ConfigResult) {
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems, 'proxy.yaml'));
  return result.config.listings;
}

function problemsOf(result: ConfigResult): ConfigProblem[] {
  assert.equal(result.ok, false, 'should be refused');
  return result.ok ? [] : result.problems;
}

/** The one problem matching `message`, with its place. */
function findProblem(problems: readonly ConfigProblem[], message: RegExp): ConfigProblem {
  const found = problems.find((p) => message.test(p.message));
  assert.ok(found, `no problem matching ${message}:\n${formatProblems(problems, 'proxy.yaml')}`);
  return found;
}

const csvHeader = 'listing,peer_name,peer_url,notify,timezone';

test('CSV: one row per listing × peer, a listing without peers on a row of its own, merged with inline listings', () => {
  const result = load('listings.csv', [
    csvHeader,
    'beach-house,airbnb,https://airbnb.example/1.ics,,Europe/Rome',
    'beach-house,vrbo,https://vrbo.example/1.ics,false,Europe/Rome',
    'cabin,,,,',
    '',
    'loft,"Booking, EU",https://booking.example/3.ics,yes,',
  ].join('\n'), { inline: 'listings:\n  inline-one:\n    peers: []' });
  const listings = listingsOf(result);
  assert.deepEqual(Object.keys(listings).sort(), ['beach-house', 'cabin', 'inline-one', 'loft']);
  assert.equal(listings['beach-house']?.timezone, 'Europe/Rome');
  assert.deepEqual(listings['beach-house']?.peers.map((p) => [p.name, p.url, p.notify]), [
    ['airbnb', 'https://airbnb.example/1.ics', true],
    ['vrbo', 'https://vrbo.example/1.ics', false],
  ]);
  assert.deepEqual(listings.cabin?.peers, []);
  assert.equal(listings.loft?.peers[0]?.name, 'Booking, EU');
  assert.equal(listings.loft?.timezone, undefined);
  assert.ok(result.ok);
  assert.deepEqual(result.map, { inline: 1, listingsFile: { path: '/srv/icalpush/listings.csv', listings: 3 } });
  assert.equal(result.config.listingsFile, '/srv/icalpush/listings.csv');
});

test('CSV from a spreadsheet: a BOM, CRLF line ends, columns in another order and capitalized, spaces around values', () => {
  const listings = listingsOf(load('listings.csv',
    '\uFEFFPeer_URL,Listing,Timezone\r\n https://airbnb.example/1.ics , beach-house , Europe/Rome \r\n'));
  assert.deepEqual(listings['beach-house']?.peers.map((p) => p.url), ['https://airbnb.example/1.ics']);
  assert.equal(listings['beach-house']?.timezone, 'Europe/Rome');
});

test('CSV: a line starting with # is a comment; a # inside a value is kept', () => {
  const listings = listingsOf(load('listings.csv',
    `# generated nightly\n${csvHeader}\n# cabin is seasonal\ncabin,ota,https://ota.example/c.ics#frag,,\n`));
  assert.deepEqual(Object.keys(listings), ['cabin']);
  assert.equal(listings.cabin?.peers[0]?.url, 'https://ota.example/c.ics#frag');
});

test('CSV: a header row alone is a map without listings; ${VAR} is substituted in values, defaults too', () => {
  assert.deepEqual(listingsOf(load('listings.csv', `${csvHeader}\n`)), {});
  const listings = listingsOf(load('listings.csv',
    `${csvHeader}\nbeach-house,airbnb,https://airbnb.example/1.ics?t=\${AIRBNB_TOKEN},,\${ZONE:-Europe/Rome}\n`,
    { env: { AIRBNB_TOKEN: 's3cret' } }));
  assert.equal(listings['beach-house']?.peers[0]?.url, 'https://airbnb.example/1.ics?t=s3cret');
  assert.equal(listings['beach-house']?.timezone, 'Europe/Rome');
});

test('CSV: every problem at once, each with the listings file and its row', () => {
  const problems = problemsOf(load('listings.csv', [
    csvHeader, // 1
    'lake,airbnb,ftp://x,maybe,Europe/Rom', // 2: bad URL, bad notify, bad zone
    'lake,vrbo,https://vrbo.example/${MISSING}.ics,,', // 3: missing variable
    ',x,https://x.example/1.ics', // 4: no listing
    'bad id,,,,', // 5: not a usable id
    'pond,airbnb,https://a.example/1.ics,,Europe/Rome', // 6
    'pond,vrbo,https://b.example/1.ics,,Europe/Paris', // 7: a second zone
    'pond,,', // 8: no peer, no problem
    'dune,airbnb,,true,', // 9: a peer without URL
    'dune,a,https://a.example/1.ics,,,extra', // 10: a field too many
  ].join('\n')));
  const at = (message: RegExp, path: string, line: number) => {
    const problem = findProblem(problems, message);
    assert.deepEqual({ path: problem.path, line: problem.line, file: problem.file },
      { path, line, file: '/srv/icalpush/listings.csv' }, message.source);
  };
  at(/must be an http/, 'listings.lake.peers[0].url', 2);
  at(/must be true or false/, 'listings.lake.peers[0].notify', 2);
  at(/not an IANA time zone name.*Europe\/Rom/, 'listings.lake.timezone', 2);
  at(/MISSING is not set/, '', 3);
  at(/listing column is empty/, '', 4);
  at(/not a usable listing id/, 'listings["bad id"]', 5);
  at(/is Europe\/Paris here but Europe\/Rome on line 6/, 'listings.pond.timezone', 7);
  at(/peer_name or notify but no peer_url/, '', 9);
  at(/has 6 fields, the header 5/, '', 10);
  // The failed ${MISSING} is reported once, not echoed as a bad URL.
  assert.equal(problems.filter((p) => p.line === 3).length, 1);
  assert.match(formatProblems(problems, 'proxy.yaml'),
    /^listings\.lake\.peers\[0\]\.url: must be an http:\/\/ or https:\/\/ URL \(\/srv\/icalpush\/listings\.csv line 2\)$/m);
});

test('CSV: the same peer twice for a listing names the second row', () => {
  const twice = findProblem(problemsOf(load('listings.csv',
    `${csvHeader}\npond,airbnb,https://a.example/1.ics,,\ncabin,,,,\npond,again,https://a.example/1.ics,,\n`)),
  /duplicates peers\[0\]\.url/);
  assert.deepEqual([twice.path, twice.line], ['listings.pond.peers[1].url', 4]);
});

test('CSV: a header that is not the listings header is refused with the columns it may have', () => {
  const unknown = findProblem(problemsOf(load('listings.csv', 'listing,peer,url\na,b,c\n')), /unknown column "peer"/);
  assert.equal(unknown.line, 1);
  assert.match(unknown.message, /listing, peer_name, peer_url, notify, timezone/);
  findProblem(problemsOf(load('listings.csv', 'peer_url,timezone\nhttps://a.example/1.ics,Europe/Rome\n')),
    /no listing column/);
  findProblem(problemsOf(load('listings.csv', 'listing,listing\na,b\n')), /the column listing appears twice/);
  // A spreadsheet in a European locale saves with semicolons.
  findProblem(problemsOf(load('listings.csv', 'listing;peer_url\na;https://a.example/1.ics\n')),
    /separated by ";": a listings CSV is separated by commas/);
});

test('CSV: an empty file (a truncated export) and a quote never closed are refused, nothing is read', () => {
  findProblem(problemsOf(load('listings.csv', '')), /the file is empty: it needs a header row/);
  const unclosed = findProblem(problemsOf(load('listings.csv', `${csvHeader}\na,"b,https://a.example/1.ics,,\n`)),
    /invalid CSV/);
  assert.equal(unclosed.file, '/srv/icalpush/listings.csv');
});

test('a listing both inline and in the file is an error naming both places', () => {
  const problems = problemsOf(load('listings.csv', `${csvHeader}\ncabin,,,,\nbeach-house,,,,\n`,
    { inline: 'listings:\n  beach-house:\n    peers: []' }));
  const twice = findProblem(problems, /defined twice/);
  assert.equal(twice.path, 'listings.beach-house');
  assert.equal(twice.line, 7);
  assert.match(twice.message, /inline in proxy\.yaml line 7 and in \/srv\/icalpush\/listings\.csv line 3/);
});

test('YAML: the shape of inline listings; problems name the file and line', () => {
  const yaml = [
    'beach-house:', // 1
    '  timezone: Europe/Rome',
    '  peers:',
    '    - name: airbnb',
    '      url: https://airbnb.example/1.ics?t=${TOKEN}',
    'cabin: { peers: [] }',
  ].join('\n');
  const listings = listingsOf(load('map.yaml', yaml, { env: { TOKEN: 'x' } }));
  assert.equal(listings['beach-house']?.peers[0]?.url, 'https://airbnb.example/1.ics?t=x');
  assert.deepEqual(listings.cabin?.peers, []);

  const bad = problemsOf(load('map.yml', [
    'beach-house:', // 1
    '  timezon: Europe/Rome', // 2: typo
    '  peers:',
    '    - url: nope', // 4
  ].join('\n')));
  const typo = findProblem(bad, /did you mean "timezone"/);
  assert.deepEqual([typo.path, typo.line, typo.file], ['listings.beach-house.timezon', 2, '/srv/icalpush/map.yml']);
  const url = findProblem(bad, /must be an http/);
  assert.deepEqual([url.path, url.line], ['listings.beach-house.peers[0].url', 4]);
  // A listing id twice: which one was meant is unknown, so it is refused alone, with its line.
  const twice = findProblem(problemsOf(load('map.yaml', 'cabin:\n  peers: []\nlake: {}\ncabin:\n  peers: []\n')),
    /duplicated mapping key/);
  assert.equal(twice.line, 4);
});

test('YAML: a syntax error, an empty file, a list at the top level and a missing variable are refused', () => {
  assert.equal(findProblem(problemsOf(load('map.yaml', 'a:\n  peers: [\n')), /invalid YAML/).file,
    '/srv/icalpush/map.yaml');
  findProblem(problemsOf(load('map.yaml', '')), /the file is empty \(write \{\} for a map without listings\)/);
  findProblem(problemsOf(load('map.yaml', '- a\n- b\n')), /top level must be a mapping of listing id/);
  const missing = findProblem(problemsOf(load('map.yaml', 'a:\n  peers:\n    - url: https://x.example/${NOPE}\n')),
    /NOPE is not set/);
  assert.deepEqual([missing.path, missing.line], ['listings.a.peers[0].url', 3]);
  // The failed variable is not reported a second time as a bad URL.
  assert.equal(problemsOf(load('map.yaml', 'a:\n  peers:\n    - url: ${NOPE}\n')).length, 1);
});

test('JSON: the same shape; a bad value and a syntax error name the line', () => {
  const json = JSON.stringify({ a: { peers: [{ url: 'https://x.example/1.ics' }] } }, null, 2);
  assert.equal(listingsOf(load('map.json', json)).a?.peers[0]?.url, 'https://x.example/1.ics');
  const bad = findProblem(problemsOf(load('map.json', '{\n  "a": {\n    "peers": [\n      { "url": 12 }\n    ]\n  }\n}')),
    /must be an http/);
  assert.deepEqual([bad.path, bad.line], ['listings.a.peers[0].url', 4]);
  const syntax = findProblem(problemsOf(load('map.json', '{\n  "a": {\n    "peers": [,]\n  }\n}')), /invalid JSON/);
  assert.equal(syntax.line, 3);
});

test('listingsFile: a file that cannot be read, or of an unknown kind, is a problem of the config key', () => {
  const missing = findProblem(problemsOf(load('listings.csv', undefined)), /cannot read \/srv\/icalpush\/listings\.csv: no such file/);
  assert.deepEqual([missing.path, missing.line, missing.file], ['listingsFile', 5, undefined]);
  const kind = findProblem(problemsOf(load('listings.txt', 'x')), /must be a \.csv, \.yaml, \.yml or \.json file/);
  assert.deepEqual([kind.path, kind.line], ['listingsFile', 5]);
});

test('listingsFile: false leaves the file unread (icalpush reload only needs where the sidecar listens)', () => {
  const result = parseConfigText(configText('listings.csv'), {
    env: {}, sourceName: 'proxy.yaml', baseDir: '/srv', listingsFile: false,
    readFile: () => assert.fail('read'),
  });
  assert.ok(result.ok);
  assert.deepEqual(result.config.listings, {});
});

test('a key twice in the config itself is refused with both lines', () => {
  const result = parseConfigText('upstream: http://127.0.0.1:9000\nfeeds:\n  - path: /c/{listing}.ics\nupstream: http://127.0.0.1:9001\n',
    { env: {}, sourceName: 'proxy.yaml', baseDir: '/srv' });
  const twice = findProblem(problemsOf(result), /appears twice in this mapping \(first on line 1\)/);
  assert.deepEqual([twice.path, twice.line], ['upstream', 4]);
});

test('CSV: the line named is the one the row starts on, whatever comes before (LF or CRLF, comments, blank lines, '
  + 'quoted values over several lines)', () => {
  fc.assert(fc.property(
    fc.constantFrom('\n', '\r\n'),
    fc.array(fc.record({
      before: fc.constantFrom('', '# note', '   ', ',,,,', '#,a,b'),
      multiline: fc.boolean(),
      bad: fc.boolean(),
    }), { minLength: 1, maxLength: 12 }),
    (eol, rows) => {
      let text = `${csvHeader}${eol}`;
      let line = 1;
      const expected = new Map<string, number>();
      rows.forEach((row, i) => {
        if (row.before !== '') {
          text += `${row.before}${eol}`;
          line += 1;
        }
        const id = `l${i}`;
        expected.set(`listings.${id}.peers[0].url`, line + 1);
        const name = row.multiline ? `"two${eol}lines"` : 'one';
        text += `${id},${name},${row.bad ? 'ftp://bad' : `https://ota.example/${i}.ics`},,${eol}`;
        line += row.multiline ? 2 : 1;
      });
      const result = load('listings.csv', text);
      const bad = rows.filter((r) => r.bad).length;
      if (bad === 0) return result.ok;
      const problems = problemsOf(result);
      return problems.length === bad && problems.every((p) => p.line === expected.get(p.path));
    },
  ), { numRuns: 200 });
});

test('hostile listings files: ids that are names of Object.prototype, __proto__, aliases, a key twice in JSON', () => {
  // Ids that happen to be property names of every object are listings like any other.
  const named = listingsOf(load('listings.csv',
    `${csvHeader}\nconstructor,ota,https://ota.example/1.ics,,\ntoString,ota,https://ota.example/2.ics,,\n`));
  assert.deepEqual(Object.keys(named).sort(), ['constructor', 'toString']);
  assert.equal(named[String('constructor')]?.peers[0]?.url, 'https://ota.example/1.ics');
  // __proto__ is refused, never silently dropped (nor made the prototype of the map).
  for (const [name, text] of [['listings.csv', `${csvHeader}\n__proto__,,,,Europe/Rome\n`],
    ['map.json', '{"__proto__": {"peers": []}, "b": {"peers": []}}']] as const) {
    const reserved = findProblem(problemsOf(load(name, text)), /__proto__ is reserved/);
    assert.equal(reserved.path, 'listings.__proto__');
  }
  // A JSON export that gives a listing twice (a join gone wrong) would lose one of them.
  const twice = findProblem(problemsOf(load('map.json', '{"a": {"peers": []},\n "a": {"peers": []}}')),
    /a key given twice/);
  assert.equal(twice.line, 2);
  // Nested YAML aliases would make every walk of the tree exponential: refused, at once.
  const bomb = ['x0: &x0 [q, q, q, q, q, q, q, q, q, q]',
    ...Array.from({ length: 8 }, (_, i) => `x${i + 1}: &x${i + 1} [${Array(10).fill(`*x${i}`).join(', ')}]`),
    'bomb: { peers: [], extra: *x8 }'].join('\n');
  findProblem(problemsOf(load('map.yaml', bomb)), /aliases \(\*name\) are not accepted/);
});

test('CSV: what cannot be parsed is told without its value (a value may be a credential)', () => {
  const quote = findProblem(problemsOf(load('listings.csv',
    `${csvHeader}\na,ota,https://ota.example/a.ics?t=SUPERSECRET"x",,\n`)), /invalid CSV/);
  assert.doesNotMatch(quote.message, /SUPERSECRET/);
  assert.match(quote.message, /a quote inside a value that is not quoted/);
  // A column shifted into timezone (a URL with its token) is not repeated in the message.
  const shifted = problemsOf(load('listings.csv', `${csvHeader}\na,ota,https://ota.example/1.ics,,https://x.example/?t=SECRET\n`));
  assert.doesNotMatch(formatProblems(shifted, 'proxy.yaml'), /SECRET/);
  findProblem(shifted, /is not an IANA time zone name/);
});

test('CSV: lines end with LF, CRLF or CR alone; skipped rows (empty quoted values, indented comments) count', () => {
  const problems = problemsOf(load('listings.csv', 'listing,peer_url\r"",""\rbad,notaurl\r  # note\rbad2,nope\r'));
  assert.deepEqual(problems.map((p) => [p.path, p.line]),
    [['listings.bad.peers[0].url', 3], ['listings.bad2.peers[0].url', 5]]);
});
