// The redactor of status, logs and `icalpush check` (SPEC "Admin"): one table of what a secret
// looks like in real feed URLs, and of the ids and words that must stay readable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedactor, isTokenLike, redactUrl } from '../src/redact.ts';

const feedPatterns = ['/calendar/{listing}.ics', '/ical/{listing}/{secret}.ics', '/s/{secret}/{listing}/{secret}', '/w/{listing}/**'];
const redact = createRedactor(feedPatterns);

const cases: Array<{ name: string; input: string; expected: string; withoutPatterns?: string }> = [
  // Userinfo
  { name: 'userinfo with a password', input: 'https://user:pa55word@peer.example/a.ics', expected: 'https://[REDACTED]@peer.example/a.ics' },
  { name: 'userinfo without a password', input: 'http://token@peer.example/a.ics', expected: 'http://[REDACTED]@peer.example/a.ics' },
  { name: 'a password containing @', input: 'https://u:p@ss@peer.example/a.ics', expected: 'https://[REDACTED]@peer.example/a.ics' },
  { name: 'userinfo, port and query', input: 'http://u:p@127.0.0.1:9000/x?k=v', expected: 'http://[REDACTED]@127.0.0.1:9000/x?k=[REDACTED]' },
  { name: 'an origin with userinfo and no path', input: 'https://u:p@host.example', expected: 'https://[REDACTED]@host.example' },
  // Query
  { name: 'a query value', input: '/calendar/x.ics?t=s3cr3tvalue', expected: '/calendar/x.ics?t=[REDACTED]' },
  { name: 'a query without =', input: '/ical/x.ics?abc123secret', expected: '/ical/x.ics?[REDACTED]' },
  { name: 'repeated keys', input: '/a?k=1&k=2&k=3', expected: '/a?k=[REDACTED]&k=[REDACTED]&k=[REDACTED]' },
  { name: 'mixed parameters with and without =', input: '/a?s=x&nonTentative&e=', expected: '/a?s=[REDACTED]&[REDACTED]&e=[REDACTED]' },
  { name: 'empty parameters stay empty', input: '/a?&k=v&', expected: '/a?&k=[REDACTED]&' },
  { name: 'an empty query', input: '/a?', expected: '/a?' },
  { name: 'a query on an origin without path', input: 'https://host.example?key=v', expected: 'https://host.example?key=[REDACTED]' },
  { name: 'an encoded = does not split a bare secret', input: '/a?abc%3Dsecret', expected: '/a?[REDACTED]' },
  { name: 'encoded names are kept as written', input: '/a?na%6De=va%6Cue', expected: '/a?na%6De=[REDACTED]' },
  // Fragment
  { name: 'a fragment', input: 'https://host.example/cb#access_token=abc', expected: 'https://host.example/cb#[REDACTED]' },
  { name: 'a query and a fragment', input: '/a?k=v#frag', expected: '/a?k=[REDACTED]#[REDACTED]' },
  { name: 'a ? inside the fragment is not a query', input: '/a#x?k=v', expected: '/a#[REDACTED]' },
  { name: 'an empty fragment', input: '/a#', expected: '/a#' },
  // {secret} in feeds patterns
  {
    name: 'a {secret} segment before .ics',
    input: '/ical/beach-house/hunter2.ics',
    expected: '/ical/beach-house/[REDACTED].ics',
    withoutPatterns: '/ical/beach-house/hunter2.ics',
  },
  {
    name: 'two {secret}s in one pattern, with a query',
    input: '/s/opensesame/beach-house/swordfish?x=1',
    expected: '/s/[REDACTED]/beach-house/[REDACTED]?x=[REDACTED]',
    withoutPatterns: '/s/opensesame/beach-house/swordfish?x=[REDACTED]',
  },
  {
    name: 'the listing of a pattern stays even when it looks like a token',
    input: '/calendar/5f1e3c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b.ics',
    expected: '/calendar/5f1e3c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b.ics',
    withoutPatterns: '/calendar/[REDACTED].ics',
  },
  {
    name: 'a wildcard of a pattern is judged like any path',
    input: '/w/beach-house/3f2a9c7e1b8d4a6f0e5d/feed.ics',
    expected: '/w/beach-house/[REDACTED]/feed.ics',
  },
  {
    name: 'a {secret} pattern on an absolute URL',
    input: 'https://u:p@up.example/ical/x/hunter2.ics',
    expected: 'https://[REDACTED]@up.example/ical/x/[REDACTED].ics',
    withoutPatterns: 'https://[REDACTED]@up.example/ical/x/hunter2.ics',
  },
  { name: 'a path no pattern matches gets the heuristic', input: '/ical/x/y/hunter2.ics', expected: '/ical/x/y/hunter2.ics' },
  // Peer URLs as the platforms hand them out (tokens made up, shapes real)
  {
    name: 'vrbo: token as the file name',
    input: 'https://www.vrbo.com/icalendar/3f2a9c7e1b8d4a6f0e5d.ics',
    expected: 'https://www.vrbo.com/icalendar/[REDACTED].ics',
  },
  {
    name: 'vrbo/homeaway: token file name and a bare query',
    input: 'http://www.homeaway.com/icalendar/a1b2c3d4e5f64789a0b1c2d3e4f5a6b7.ics?nonTentative',
    expected: 'http://www.homeaway.com/icalendar/[REDACTED].ics?[REDACTED]',
  },
  {
    name: 'airbnb: listing number stays, s= goes',
    input: 'https://www.airbnb.com/calendar/ical/12345678.ics?s=0123456789abcdef0123456789abcdef',
    expected: 'https://www.airbnb.com/calendar/ical/12345678.ics?s=[REDACTED]',
  },
  {
    name: 'booking.com: t= goes',
    input: 'https://admin.booking.com/hotel/hoteladmin/ical.html?t=4f5e6d7c-1a2b-3c4d-5e6f-7a8b9c0d1e2f',
    expected: 'https://admin.booking.com/hotel/hoteladmin/ical.html?t=[REDACTED]',
  },
  {
    name: 'google private address: the private-… segment goes, the calendar id stays',
    input: 'https://calendar.google.com/calendar/ical/user%40gmail.com/private-0123456789abcdef0123456789abcdef/basic.ics',
    expected: 'https://calendar.google.com/calendar/ical/user%40gmail.com/[REDACTED]/basic.ics',
  },
  {
    name: 'a long base64-like segment with other characters',
    input: '/feed/aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRva2Vu+x==/cal.ics',
    expected: '/feed/[REDACTED]/cal.ics',
  },
  // What must stay
  { name: 'an all-digit id', input: 'https://peer.example/ical/12345678.ics', expected: 'https://peer.example/ical/12345678.ics' },
  { name: 'a word id', input: '/calendar/beach-house.ics', expected: '/calendar/beach-house.ics' },
  { name: 'a long word id without digits', input: '/p/seaside-cottage-north.ics', expected: '/p/seaside-cottage-north.ics' },
  { name: 'a short mixed id', input: '/p/room12b.ics', expected: '/p/room12b.ics' },
  { name: 'a plain path', input: '/bookings/b/7', expected: '/bookings/b/7' },
  { name: 'the root', input: '/', expected: '/' },
  { name: 'a {listing} template of a refresh URL', input: 'http://127.0.0.1:9000/admin/sync/{listing}', expected: 'http://127.0.0.1:9000/admin/sync/{listing}' },
  // Garbage never throws
  { name: 'an asterisk', input: '*', expected: '*' },
  { name: 'an empty string', input: '', expected: '' },
  { name: 'no scheme, userinfo and query', input: 'user:pw@host/x?k=v', expected: '[REDACTED]@host/x?[REDACTED]' },
  { name: 'a scheme without //', input: 'mailto:someone@example.com?subject=x', expected: '[REDACTED]@example.com?[REDACTED]' },
  { name: 'percent signs that do not decode', input: '/a/%E0%A4%A?x=%', expected: '/a/%E0%A4%A?x=[REDACTED]' },
];

for (const c of cases) {
  test(`redacts ${c.name}`, () => {
    assert.equal(redact(c.input), c.expected);
    assert.equal(redactUrl(c.input), c.withoutPatterns ?? c.expected);
  });
}

test('redacting twice changes nothing more', () => {
  for (const c of cases) assert.equal(redact(redact(c.input)), c.expected, c.name);
});

test('token-like: 16+ URL-safe characters with letters and digits, or 32+ of anything', () => {
  assert.equal(isTokenLike('3f2a9c7e1b8d4a6f'), true);
  assert.equal(isTokenLike('3f2a9c7e1b8d4a6'), false, '15 characters');
  assert.equal(isTokenLike('1234567890123456'), false, 'digits only');
  assert.equal(isTokenLike('abcdefghijklmnop'), false, 'letters only');
  assert.equal(isTokenLike('a'.repeat(32)), true);
  assert.equal(isTokenLike('3f2a9c7e.1b8d4a6f'), false, 'a dot is not URL-safe token text');
});

test('an unusable feeds pattern is ignored, not thrown on', () => {
  const lenient = createRedactor(['no-slash/{listing}', '/calendar/{listing}.ics']);
  assert.equal(lenient('/calendar/x.ics?t=1'), '/calendar/x.ics?t=[REDACTED]');
});
