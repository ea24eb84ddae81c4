// Path patterns of the config: what matches, what is captured, what a `{secret}` changes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePathPattern, isPathPatternError, type PathPattern } from '../../src/http/path-pattern.ts';

function compile(source: string): PathPattern {
  const compiled = compilePathPattern(source);
  if (isPathPatternError(compiled)) assert.fail(`${source}: ${compiled.error}`);
  return compiled;
}

test('{listing} captures one segment or part of one, percent-decoded', () => {
  const pattern = compile('/calendar/{listing}.ics');
  assert.deepEqual(pattern.match('/calendar/beach-house.ics'), { listing: 'beach-house' });
  assert.deepEqual(pattern.match('/calendar/caf%C3%A9.ics'), { listing: 'café' });
  assert.equal(pattern.match('/calendar/a/b.ics'), null);
  assert.equal(pattern.match('/calendar/a%2Fb.ics'), null, 'an encoded / is not an id');
  assert.equal(pattern.hasSecret, false);
});

test('* and ** before {listing} do not shift the captured listing', () => {
  assert.deepEqual(compile('/ical/*/{listing}.ics').match('/ical/v2/beach-house.ics'), { listing: 'beach-house' });
  assert.deepEqual(compile('/bookings/{listing}/**').match('/bookings/b/1/2'), { listing: 'b' });
});

test('a {secret} matches within one segment and is not the listing', () => {
  const pattern = compile('/ical/{listing}/{secret}.ics');
  assert.equal(pattern.hasSecret, true);
  assert.deepEqual(pattern.match('/ical/beach-house/hunter2.ics'), { listing: 'beach-house' });
  assert.equal(pattern.match('/ical/beach-house/a/b.ics'), null);
  assert.equal(pattern.match('/ical/beach-house/.ics'), null, 'a secret is never empty');
});

test('a {secret} may come before the listing, and more than once', () => {
  const pattern = compile('/{secret}/cal/{listing}/{secret}');
  assert.deepEqual(pattern.match('/k1/cal/lake/k2'), { listing: 'lake' });
});

test('pieces cut a matching path into the pattern\'s parts, joining back to the path', () => {
  const pattern = compile('/ical/{listing}/{secret}.ics');
  const pieces = pattern.pieces('/ical/beach-house/hunter2.ics');
  assert.deepEqual(pieces, [
    { kind: 'literal', text: '/ical/' },
    { kind: 'listing', text: 'beach-house' },
    { kind: 'literal', text: '/' },
    { kind: 'secret', text: 'hunter2' },
    { kind: 'literal', text: '.ics' },
  ]);
  assert.equal(pieces?.map((p) => p.text).join(''), '/ical/beach-house/hunter2.ics');
  assert.equal(pattern.pieces('/other/beach-house/hunter2.ics'), null);
});

test('pieces name wildcard text, kept as written (not decoded)', () => {
  const pieces = compile('/w/{listing}/*/**').pieces('/w/caf%C3%A9/x%20y/rest/of/it');
  assert.deepEqual(pieces, [
    { kind: 'literal', text: '/w/' },
    { kind: 'listing', text: 'caf%C3%A9' },
    { kind: 'literal', text: '/' },
    { kind: 'wildcard', text: 'x%20y' },
    { kind: 'literal', text: '/' },
    { kind: 'wildcard', text: 'rest/of/it' },
  ]);
});

test('expand fills the listing in, and cannot fill a {secret}', () => {
  assert.equal(compile('/calendar/{listing}.ics').expand('café house'), '/calendar/caf%C3%A9%20house.ics');
  assert.equal(compile('/ical/{listing}/{secret}.ics').expand('beach-house'), undefined);
});

const refusals: Array<[string, string]> = [
  ['calendar/{listing}.ics', 'must start with /'],
  ['/calendar/{listing}.ics?t=1', 'must be a path without query'],
  ['/calendar/x.ics', 'must contain {listing}'],
  ['/{secret}/x.ics', 'must contain {listing}'],
  ['/{listing}/{listing}.ics', 'must contain {listing} once'],
  ['/{listing}/{token}.ics', 'only {listing} and {secret} may be in braces'],
  ['/{listing}/{secret.ics', 'only {listing} and {secret} may be in braces'],
  ['/{listing}/**/x', '** may only end the pattern'],
];

for (const [source, error] of refusals) {
  test(`refuses ${source}: ${error}`, () => {
    assert.deepEqual(compilePathPattern(source), { error });
  });
}
