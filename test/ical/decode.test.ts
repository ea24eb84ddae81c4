import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFeed } from '../../src/ical/decode.ts';

test('decodeFeed keeps valid UTF-8 as UTF-8', () => {
  assert.deepEqual(decodeFeed(Buffer.from('SUMMARY:Occupé', 'utf8')), { text: 'SUMMARY:Occupé', encoding: 'utf-8', hadBom: false });
});

test('decodeFeed strips a UTF-8 BOM', () => {
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('BEGIN:VCALENDAR')]);
  assert.deepEqual(decodeFeed(body), { text: 'BEGIN:VCALENDAR', encoding: 'utf-8', hadBom: true });
});

test('decodeFeed falls back to Latin-1 for invalid UTF-8, one code point per byte', () => {
  const decoded = decodeFeed(Buffer.from([0x52, 0xe9, 0x20, 0x80]));
  assert.equal(decoded.encoding, 'latin1');
  assert.equal(decoded.text, 'R\u00e9 \u0080');
});
