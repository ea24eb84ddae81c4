import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeToken, encodeToken } from '../../src/feeds/sync-token.ts';

const feed = '/export/listing-42.ics?token=s3cr3t-Query-Value';
const lineage = 'AbCd-_9z';

test('encodeToken writes a quoted data URI (draft §6)', () => {
  assert.match(encodeToken({ feed, lineage, version: 7 }), /^"data:,[A-Za-z0-9._-]+"$/);
});

test('decodeToken reads back the version', () => {
  assert.deepEqual(decodeToken(encodeToken({ feed, lineage, version: 7 }), feed), { ok: true, lineage, version: 7 });
});

test('decodeToken reads back the paging position, whatever the UID holds', () => {
  const after = 'a.b,c"d\\é 🏠@example.com';
  const decoded = decodeToken(encodeToken({ feed, lineage, version: 3, after }), feed);
  assert.deepEqual(decoded, { ok: true, lineage, version: 3, after });
});

test('decodeToken accepts the value without its quotes', () => {
  const unquoted = encodeToken({ feed, lineage, version: 12 }).slice(1, -1);
  assert.deepEqual(decodeToken(unquoted, feed), { ok: true, lineage, version: 12 });
});

test('decodeToken calls garbage malformed', () => {
  for (const header of ['', '""', 'data:,', '"data:,1234567"', 'http://example.com/', '"data:,v1.short.1"', 'data:,v1.AAAAAAAAAAAAAAAA.AbCd-_9z.-1', 'data:,v1.AAAAAAAAAAAAAAAA.1']) {
    assert.deepEqual(decodeToken(header, feed), { ok: false, reason: 'malformed' }, header);
  }
});

test('decodeToken calls a version past safe integers malformed', () => {
  const token = encodeToken({ feed, lineage, version: 1 }).replace(/\.1"$/, '.999999999999999"');
  assert.deepEqual(decodeToken(token, feed), { ok: true, lineage, version: 999999999999999 });
  const tooLong = encodeToken({ feed, lineage, version: 1 }).replace(/\.1"$/, '.9999999999999999"');
  assert.deepEqual(decodeToken(tooLong, feed), { ok: false, reason: 'malformed' });
});

test('decodeToken calls a non-canonical paging id malformed', () => {
  const token = encodeToken({ feed, lineage, version: 1, after: 'a' }); // 'a' is "YQ"; "YR" decodes to 'a' too
  assert.deepEqual(decodeToken(token.replace(/YQ"$/, 'YR"'), feed), { ok: false, reason: 'malformed' });
});

test('decodeToken tells a token of another feed apart', () => {
  const token = encodeToken({ feed: '/export/listing-43.ics?token=other', lineage, version: 7 });
  assert.deepEqual(decodeToken(token, feed), { ok: false, reason: 'other-feed' });
});

test('a token never contains the feed key or its query text', () => {
  const token = encodeToken({ feed, lineage, version: 7, after: 'uid-1' });
  assert.equal(token.includes('s3cr3t'), false);
  assert.equal(token.includes('listing-42'), false);
});
