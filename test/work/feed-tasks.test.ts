// The worker's feed task: a re-read packs the entities it takes unchanged from the records of earlier
// reads, and gives exactly what a read from scratch gives; the cache counts the bytes those records keep.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFeedCache, packCalendar, type PackedAnalysis, packedCount, runAnalyze, unpackEntity } from '../../src/work/feed-tasks.ts';

const event = (i: number, version: number) => `BEGIN:VEVENT\r\nUID:e${i}@t\r\nDTSTAMP:20260101T00000${version % 10}Z\r\n`
  + `DTSTART;VALUE=DATE:20260110\r\nSUMMARY:Booked ${i} v${version} ${'x'.repeat(200)}\r\nEND:VEVENT\r\n`;
const feed = (versions: readonly number[]) => Buffer.from('BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n'
  + `${versions.map((v, i) => event(i, v)).join('')}END:VCALENDAR\r\n`);

const entities = (packed: PackedAnalysis) => Array.from({ length: packedCount(packed) }, (_, i) => {
  const e = unpackEntity(packed, i);
  return { id: e.id, hash: e.hash, content: e.content, text: e.text(), stub: e.stub() };
});

test('re-reads that each keep one entity of every earlier read pack as from scratch, and stay bounded', async () => {
  const cache = createFeedCache();
  const count = 2_000;
  const versions = Array.from({ length: count }, () => 0);
  const sizes: number[] = [];
  for (let read = 0; read < 12; read += 1) {
    // Read r keeps event r - 1 as read r - 1 had it, and rewrites the others after it.
    for (let i = read; i < count; i += 1) versions[i] = read;
    const body = feed(versions);
    const { value } = await runAnalyze({ key: 'k', body: new Uint8Array(body), maxEntities: Infinity }, cache);
    const expected = packCalendar(body);
    assert.deepEqual(entities(value), entities(expected));
    assert.equal(value.tag, expected.tag);
    sizes.push(cache.get('k')?.bytes ?? 0);
  }
  // Each read's records are encoded into a slab of their own, kept while one of them is: the slabs
  // counted never reach many times a read's own.
  assert.ok(Math.max(...sizes) < 2.5 * (sizes[0] as number), `${sizes}`);
});
