// Accept-Encoding negotiation (RFC 9110 §12.5.3) and the compressors' output decoding back to the input.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib';
import { compress, createCompressor, negotiateEncoding } from '../../src/http/compress.ts';

const cases: Array<[string | string[] | undefined, string, string]> = [
  [undefined, 'identity', 'no header: nothing is assumed'],
  ['', 'identity', 'an empty value asks for no coding'],
  ['gzip', 'gzip', 'gzip alone'],
  ['br', 'br', 'br alone'],
  ['gzip, deflate, br', 'br', 'br and gzip equally preferred: br'],
  ['gzip, deflate, br, zstd', 'br', 'what browsers send'],
  ['GZip', 'gzip', 'coding names are case-insensitive'],
  ['x-gzip', 'gzip', 'x-gzip is gzip (RFC 9110 §8.4.1.3)'],
  ['br;q=0.5, gzip', 'gzip', 'gzip preferred over br'],
  ['br;q=0.8, gzip;q=0.8', 'br', 'a tie in q goes to br'],
  ['gzip;q=0.5', 'gzip', 'a lower q still beats an identity the client did not name'],
  ['gzip;q=0.5, identity', 'identity', 'an identity the client prefers'],
  ['gzip;q=0, br;q=0', 'identity', 'both excluded'],
  ['br;q=0, gzip', 'gzip', 'br excluded'],
  ['*', 'br', '* accepts every coding'],
  ['*;q=0.5, gzip', 'gzip', 'a named coding beats *'],
  ['br;q=0, *', 'gzip', '* covers what is not named'],
  ['*;q=0', 'identity', 'nothing acceptable: identity rather than a 406'],
  ['identity;q=0', 'identity', 'identity excluded and nothing else offered: identity all the same'],
  ['identity;q=0, gzip', 'gzip', 'identity excluded, gzip offered'],
  ['compress, deflate', 'identity', 'codings the sidecar does not send'],
  ['zstd;q=1, gzip;q=0.1', 'gzip', 'an unknown coding preferred: the best known one'],
  ['gzip;q=2', 'identity', 'a q-value out of range says nothing'],
  ['gzip;q=abc, br', 'br', 'a malformed q-value drops its element only'],
  ['gzip ; q=0.3 , br ; Q=0.2', 'gzip', 'spaces and a capital Q'],
  [['gzip;q=0.5', 'br'], 'br', 'repeated header lines are one list'],
];

for (const [header, expected, why] of cases) {
  test(`Accept-Encoding ${JSON.stringify(header)} → ${expected}: ${why}`, () => {
    assert.equal(negotiateEncoding(header), expected);
  });
}

const body = Buffer.from(Array.from({ length: 400 }, (_, i) => `BEGIN:VEVENT\r\nUID:u-${i}\r\nEND:VEVENT\r\n`).join(''));

test('compress output decodes to the exact input, gzip and br', async () => {
  assert.deepEqual(gunzipSync(await compress(body, 'gzip')), body);
  assert.deepEqual(brotliDecompressSync(await compress(body, 'br')), body);
  assert.ok((await compress(body, 'br')).length < body.length / 4);
});

test('a compressor stream decodes to the exact input, gzip and br', async () => {
  for (const [coding, decoder] of [['gzip', createGunzip], ['br', createBrotliDecompress]] as const) {
    const decoded = await text(Readable.from([body.subarray(0, 1000), body.subarray(1000)])
      .pipe(createCompressor(coding, body.length)).pipe(decoder()));
    assert.equal(decoded, body.toString('utf8'), coding);
  }
});
