import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrefer } from '../../src/feeds/prefer.ts';

test('parsePrefer: no header states nothing', () => {
  assert.deepEqual(parsePrefer(undefined), { enhanced: false, minimal: false });
});

test('parsePrefer: reads subscribe-enhanced-get, return=minimal and limit in one header', () => {
  assert.deepEqual(parsePrefer('subscribe-enhanced-get, return=minimal, limit=25'), {
    enhanced: true, minimal: true, limit: 25,
  });
});

test('parsePrefer: reads preferences spread over several headers, names case-insensitively', () => {
  assert.deepEqual(parsePrefer(['Subscribe-Enhanced-Get', 'LIMIT="3"']), { enhanced: true, minimal: false, limit: 3 });
});

test('parsePrefer: only the first instance of a repeated preference counts (RFC 7240 §2)', () => {
  assert.deepEqual(parsePrefer('limit=2, limit=9, return=representation, return=minimal'), {
    enhanced: false, minimal: false, limit: 2,
  });
});

test('parsePrefer: parameters after ; do not change the preference', () => {
  assert.deepEqual(parsePrefer('subscribe-enhanced-get; x="a,b", limit=4;foo'), { enhanced: true, minimal: false, limit: 4 });
});

test('parsePrefer: a limit that is not a positive integer is ignored', () => {
  for (const bad of ['limit=0', 'limit=-1', 'limit=1.5', 'limit=abc', 'limit=', 'limit=99999999999']) {
    assert.equal(parsePrefer(bad).limit, undefined, bad);
  }
});

test('parsePrefer: a comma inside a quoted value does not split preferences', () => {
  assert.deepEqual(parsePrefer('foo="a, subscribe-enhanced-get", return=minimal'), { enhanced: false, minimal: true });
});
