// Bounds of the compressed representations (src/feeds/encoded-bodies.ts): a poll wave on a big feed must
// not start one compressor per client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finished } from 'node:stream/promises';
import { createEncodedBodies, maxOneShotBytes } from '../../src/feeds/encoded-bodies.ts';

const big = Buffer.alloc(maxOneShotBytes + 1024, 'BEGIN:VEVENT\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n');

test('past two streamed compressions at once, a big body goes out as it is; a slot freed is used again', async () => {
  let compressions = 0;
  const bodies = createEncodedBodies({ onCompress: () => {
    compressions += 1;
  } });
  const first = await bodies.encode(undefined, big, 'gzip');
  const second = await bodies.encode(undefined, big, 'br');
  const third = await bodies.encode(undefined, big, 'gzip');
  assert.ok('stream' in first && 'stream' in second, 'the first two are streamed');
  assert.equal(third.coding, 'identity');
  assert.ok('body' in third && third.body === big, 'the third is the body itself');
  assert.equal(compressions, 2);
  // The first one ends (read to its end): its slot is free again.
  if ('stream' in first) {
    first.stream.resume();
    await finished(first.stream);
  }
  const fourth = await bodies.encode(undefined, big, 'gzip');
  assert.ok('stream' in fourth, 'a freed slot streams again');
  for (const encoded of [second, fourth]) if ('stream' in encoded) encoded.stream.destroy();
});
