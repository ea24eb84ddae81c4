// The feed task that worker threads run (feed-worker.ts), and how its answer crosses the thread
// boundary: byte slabs shared with the worker, and offsets, instead of thousands of cloned strings, so the
// event loop only ever decodes the entities it needs (a changed one, not the ten thousand others).
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { analyzeCalendar, type CalendarAnalysis, calendarNights, ComponentSummary, type EntitySummary,
  type FrameSummary, type NightsResult } from '../ical/analyze.ts';
import { type BlockMemo, memoColumnBytes } from '../ical/reuse.ts';

/** What to read of one feed body. */
export type AnalyzeTask = {
  /** The feed's store key: the worker keeps that feed's last blocks to reuse. */
  key: string;
  body: Uint8Array;
  /** Entities beyond this count are not sent back (the feed is served unversioned). */
  maxEntities: number;
  /** Also compute the busy nights from `today` (a listing's own feed, a peer's feed). */
  nights?: { today: string; days?: number; zone?: string };
  /** Also list the entities carrying STATUS:DELETED (a peer's enhanced-GET delta). */
  deleted?: boolean;
};

/** The answer of one analysis, packed for the trip back. */
export type PackedAnalysis = {
  complete: boolean;
  encoding: 'utf-8' | 'latin1';
  skippedLines: number;
  frame: FrameSummary;
  tag: string;
  count: number;
  /** The slabs the entities' records lie in, shared with the worker that wrote them (never written again):
   * per entity its id, then 43 + 43 characters of hash and content hash, then text, then tombstone stub. */
  slabs?: SharedArrayBuffer[];
  /** Each slab's id, unique to the slab in any process: the same id and start is the same record's bytes. */
  slabIds?: string[];
  /** Five per entity: its slab, start of id, start of text, start of stub, end. */
  offsets?: Int32Array;
  nights?: NightsResult;
  deleted?: string[];
};

/** A worker's answer: the value, and the buffers to move with it. */
export type TaskAnswer = { value: PackedAnalysis; transfer: ArrayBuffer[] };

/** The blocks of a feed's last read, kept for its next. */
type FeedMemo = BlockMemo<ComponentSummary>;

/** What packReusing gives: the packed analysis, and the blocks to reuse next time. */
export type ReusedPack = { packed: PackedAnalysis; memo: FeedMemo | undefined };

/** One unpacked entity: what a diff needs at once, the texts on demand. */
export type PackedEntity = { id: string; hash: string; content: string; text(): string; stub(): string };

const hashLength = 43;
// A feed's blocks are kept for its next read only while they are small enough that keeping them is cheap.
const maxMemoTextBytes = 8 * 1024 * 1024;

type FeedCacheEntry = {
  memo: BlockMemo<ComponentSummary> | undefined;
  bytes: number;
  nights?: { tag: string; today: string; days: number | undefined; zone: string | undefined; result: NightsResult };
};

/** What one worker remembers of the feeds it read, bounded in bytes. */
export type FeedCache = LRUCache<string, FeedCacheEntry>;

/** A cache of at most `maxBytes` (estimated) of feed blocks. */
export function createFeedCache(maxBytes = 96 * 1024 * 1024): FeedCache {
  return new LRUCache<string, FeedCacheEntry>({ maxSize: maxBytes, sizeCalculation: (e) => Math.max(1, e.bytes) });
}

/** Analyses and packs a body on the calling thread, without nights: what the tests and tools use. */
export function packCalendar(body: Uint8Array, maxEntities = Number.POSITIVE_INFINITY): PackedAnalysis {
  return packAnalysis(analyzeCalendar(body), maxEntities, true);
}

/** packCalendar reusing the blocks of the feed's last read, and giving this read's for the next one. */
export function packReusing(body: Uint8Array, memo: FeedMemo | undefined): ReusedPack {
  const analysis = analyzeCalendar(body, memo);
  return { packed: packAnalysis(analysis, Number.POSITIVE_INFINITY, true), memo: analysis.memo };
}

// An incomplete calendar never reaches a snapshot: its entities cross the thread only when asked for.
function packAnalysis(analysis: CalendarAnalysis, maxEntities: number, evenIncomplete = false): PackedAnalysis {
  const value: PackedAnalysis = {
    complete: analysis.complete,
    encoding: analysis.encoding,
    skippedLines: analysis.skippedLines,
    frame: analysis.frame,
    tag: analysis.tag,
    count: analysis.entities.length,
  };
  if ((analysis.complete || evenIncomplete) && analysis.entities.length <= maxEntities) {
    const packed = pack(analysis.entities);
    value.slabs = packed.slabs;
    value.slabIds = packed.slabIds;
    value.offsets = packed.offsets;
  }
  return value;
}

/** Runs one analysis; `transfer` lists the buffers to move rather than copy. */
export async function runAnalyze(task: AnalyzeTask, cache: FeedCache): Promise<TaskAnswer> {
  const cached = cache.get(task.key);
  const keepMemo = task.body.byteLength <= maxMemoTextBytes;
  const analysis = analyzeCalendar(task.body, keepMemo ? cached?.memo : undefined, { keepMemo });
  const value = packAnalysis(analysis, task.maxEntities);
  const transfer: ArrayBuffer[] = [];
  // The slabs are shared, not moved: the worker keeps the records it will take again next read.
  if (value.offsets) transfer.push(value.offsets.buffer as ArrayBuffer);
  let nights = cached?.nights;
  if (task.nights && analysis.complete) {
    const { today, days, zone } = task.nights;
    const fresh = nights && nights.tag === analysis.tag && nights.today === today && nights.days === days &&
      nights.zone === zone;
    if (!fresh) {
      const result = await calendarNights(analysis, { today, ...(days === undefined ? {} : { horizonDays: days }),
        ...(zone === undefined ? {} : { zone }) });
      nights = { tag: analysis.tag, today, days, zone, result };
    }
    value.nights = nights?.result;
  }
  if (task.deleted) {
    value.deleted = analysis.entities.filter((e) => e.members.some((m) => /\r\nSTATUS:DELETED\r\n/i.test(m.text))).map((e) => e.id);
  }
  const textBytes = task.body.byteLength;
  if (analysis.memo && textBytes <= maxMemoTextBytes) {
    cache.set(task.key, { memo: analysis.memo, bytes: memoBytes(analysis.memo), ...(nights ? { nights } : {}) });
  } else if (nights) {
    cache.set(task.key, { memo: undefined, bytes: 1_000, nights });
  } else {
    cache.delete(task.key);
  }
  return { value, transfer };
}

function memoBytes(memo: BlockMemo<ComponentSummary>): number {
  // The read's text (which the memo holds to compare the next read's blocks against), and its columns.
  let bytes = 2 * memo.text.length + memoColumnBytes(memo);
  const entities: EntitySummary[] = [];
  for (let i = 0; i < memo.count; i += 1) {
    const value = memo.made[i];
    if (!(value instanceof ComponentSummary)) {
      bytes += 300;
      continue;
    }
    // An entity's summary; its packed record is counted with the slab it lies in (see pack).
    bytes += 100 + value.bytes;
    const entity = value.madeAlone();
    if (entity) entities.push(entity);
    else bytes += value.text.length + 300;
  }
  const { slabs, recordBytes } = slabsOf(entities);
  let slabBytes = 0;
  for (const slab of slabs) slabBytes += slab.byteLength;
  // A slab lives as long as one record in it is kept: once the slabs are mostly records no longer kept,
  // the kept ones are let go, to be encoded again (into one slab) by the next read.
  if (slabBytes <= 2 * recordBytes + 64 * 1024) return bytes + slabBytes + 100 * entities.length;
  for (const e of entities) {
    e.packed = undefined;
    bytes += e.text.length + 300;
  }
  return bytes;
}

/** One entity as packed: id, hashes, text and stub as bytes, `length` of them from `start` in `slab`, and
 * where its text and stub start. */
type PackedRecord = { slab: Buffer; start: number; length: number; text: number; stub: number };

// Most entities of a re-read are the very objects of the last read (analyze.ts keeps them with the
// blocks): their bytes are encoded once, into a slab shared with the event loop's thread, and packing
// them again is naming where they lie: nothing is copied (a copy of a 3 MB feed's records, in fresh
// memory, was a fifth of a re-read). The records one packing encodes lie one after the other in one slab,
// in file order. An entity holds its own record (a property read, where a WeakMap's lookup was a third of
// packing a re-read).
function recordOf(e: EntitySummary): PackedRecord | undefined {
  return e.packed as PackedRecord | undefined;
}

// The bytes an entity's record takes.
function recordLength(e: EntitySummary): number {
  return Buffer.byteLength(e.id, 'utf8') + 2 * hashLength + Buffer.byteLength(e.text, 'utf8')
    + Buffer.byteLength(e.stub, 'utf8');
}

// Encodes the records of the entities at `indexes` into one slab of `total` bytes, one after the other,
// into `packed`; those of entities of one member (the ones analyze.ts keeps, see pack) are kept.
function encodeRecords(entities: readonly EntitySummary[], indexes: readonly number[], lengths: readonly number[],
  total: number, packed: PackedRecord[]): void {
  const slab = Buffer.from(new SharedArrayBuffer(total));
  slabIds.set(slab.buffer, `${slabPrefix}${(slabsMade += 1)}`);
  let start = 0;
  indexes.forEach((index, i) => {
    const e = entities[index] as EntitySummary;
    let at = start + slab.write(e.id, start, 'utf8');
    at += slab.write(e.hash, at, 'latin1');
    at += slab.write(e.content, at, 'latin1');
    const text = at - start;
    at += slab.write(e.text, at, 'utf8');
    slab.write(e.stub, at, 'utf8');
    const length = lengths[i] as number;
    const record = { slab, start, length, text, stub: at - start };
    packed[index] = record;
    if (e.members.length === 1) e.packed = record;
    start += length;
  });
}

// Each slab's id: this thread's random prefix and a count (slabs are never written again once made).
const slabIds = new WeakMap<ArrayBufferLike, string>();
const slabPrefix = `${randomUUID()}/`;
let slabsMade = 0;

// An entity of one member is its component's, kept with it read after read (analyze.ts): its record is
// kept. One of several is made anew by each read: its record goes into a slab of its own that goes with
// the read, not into one that a kept record would hold on to.
function pack(entities: readonly EntitySummary[]) {
  const packed: PackedRecord[] = new Array(entities.length);
  const single: number[] = [];
  const singleLengths: number[] = [];
  let singleBytes = 0;
  const several: number[] = [];
  const severalLengths: number[] = [];
  let severalBytes = 0;
  for (let i = 0; i < entities.length; i += 1) {
    const e = entities[i] as EntitySummary;
    const record = recordOf(e);
    if (record) {
      packed[i] = record;
      continue;
    }
    const length = recordLength(e);
    if (e.members.length === 1) {
      single.push(i);
      singleLengths.push(length);
      singleBytes += length;
    } else {
      several.push(i);
      severalLengths.push(length);
      severalBytes += length;
    }
  }
  if (single.length > 0) encodeRecords(entities, single, singleLengths, singleBytes, packed);
  if (several.length > 0) encodeRecords(entities, several, severalLengths, severalBytes, packed);
  const slabs: SharedArrayBuffer[] = [];
  const slabIndex = new Map<ArrayBufferLike, number>();
  const offsets = new Int32Array(entities.length * 5);
  let last: ArrayBufferLike | undefined;
  let lastIndex = -1;
  for (let i = 0; i < packed.length; i += 1) {
    const record = packed[i] as PackedRecord;
    const buffer = record.slab.buffer;
    if (buffer !== last) {
      let index = slabIndex.get(buffer);
      if (index === undefined) {
        index = slabs.length;
        slabs.push(buffer as SharedArrayBuffer);
        slabIndex.set(buffer, index);
      }
      last = buffer;
      lastIndex = index;
    }
    const start = record.slab.byteOffset + record.start;
    offsets[5 * i] = lastIndex;
    offsets[5 * i + 1] = start;
    offsets[5 * i + 2] = start + record.text;
    offsets[5 * i + 3] = start + record.stub;
    offsets[5 * i + 4] = start + record.length;
  }
  return { slabs, slabIds: slabs.map((slab) => slabIds.get(slab) as string), offsets };
}

/** Where each entity's record of a packed answer lay: what a later answer is compared with (sameRecords). */
export type RecordPlaces = { slabIds: readonly string[]; offsets: Int32Array };

/** The places of `packed`'s records (undefined when it carries none). */
export function recordPlaces(packed: PackedAnalysis): RecordPlaces | undefined {
  return packed.offsets && packed.slabIds ? { slabIds: packed.slabIds, offsets: packed.offsets } : undefined;
}

/**
 * 1 for each entity of `packed` whose record is the very record `prior` had at the same position (same slab,
 * same start): the same bytes, so the same id and hash, known without reading them. Records are never
 * written again once packed, and a slab's id names it in any thread.
 */
export function sameRecords(packed: PackedAnalysis, prior: RecordPlaces): Uint8Array {
  const offsets = packed.offsets;
  const count = Math.min(packedCount(packed), prior.offsets.length / 5);
  const same = new Uint8Array(packedCount(packed));
  if (!offsets || !packed.slabIds) return same;
  // This answer's slabs as the prior answer's slab indexes (-1: a slab it did not have).
  const byId = new Map(prior.slabIds.map((id, i) => [id, i]));
  const slabMap = Int32Array.from(packed.slabIds, (id) => byId.get(id) ?? -1);
  const before = prior.offsets;
  for (let i = 0; i < count; i += 1) {
    if (offsets[5 * i + 1] === before[5 * i + 1] && slabMap[offsets[5 * i] as number] === before[5 * i]) same[i] = 1;
  }
  return same;
}

/** The slabs the records of these entities lie in, and how many bytes the records themselves take. */
function slabsOf(entities: Iterable<EntitySummary>): { slabs: Set<Uint8Array>; recordBytes: number } {
  const slabs = new Set<Uint8Array>();
  let recordBytes = 0;
  for (const e of entities) {
    const record = recordOf(e);
    if (!record) continue;
    slabs.add(record.slab);
    recordBytes += record.length;
  }
  return { slabs, recordBytes };
}

/** The `index`-th entity of a packed analysis; strings are fresh copies (no slice keeps the buffer alive). */
export function unpackEntity(packed: PackedAnalysis, index: number): PackedEntity {
  const offsets = packed.offsets as Int32Array;
  const data = slabOf(packed, offsets[5 * index] as number);
  const idStart = offsets[5 * index + 1] as number;
  const textStart = offsets[5 * index + 2] as number;
  const stubStart = offsets[5 * index + 3] as number;
  const end = offsets[5 * index + 4] as number;
  const hashStart = textStart - 2 * hashLength;
  return {
    id: data.toString('utf8', idStart, hashStart),
    hash: data.toString('latin1', hashStart, hashStart + hashLength),
    content: data.toString('latin1', hashStart + hashLength, textStart),
    text: () => data.toString('utf8', textStart, stubStart),
    stub: () => data.toString('utf8', stubStart, end),
  };
}

/** An entity's id in a packed analysis, decoded (what a diff looks the history up by). */
export function packedId(packed: PackedAnalysis, index: number): string {
  const offsets = packed.offsets as Int32Array;
  return slabOf(packed, offsets[5 * index] as number)
    .toString('utf8', offsets[5 * index + 1] as number, (offsets[5 * index + 2] as number) - 2 * hashLength);
}

/** True when an entity's id in a packed analysis is `id`: compared in place, nothing decoded when `id`
 * is ASCII (what a re-read in the same order looks its entities up by). */
export function hasPackedId(packed: PackedAnalysis, index: number, id: string): boolean {
  const offsets = packed.offsets as Int32Array;
  const data = slabOf(packed, offsets[5 * index] as number);
  const start = offsets[5 * index + 1] as number;
  const end = (offsets[5 * index + 2] as number) - 2 * hashLength;
  if (end - start < id.length) return false;
  for (let i = 0; i < id.length; i += 1) {
    const c = id.charCodeAt(i);
    if (c > 0x7f) return packedId(packed, index) === id;
    if (data[start + i] !== c) return false;
  }
  return end - start === id.length;
}

/** True when an entity's hash in a packed analysis is `hash`: compared in place, nothing decoded. */
export function hasPackedHash(packed: PackedAnalysis, index: number, hash: string): boolean {
  if (hash.length !== hashLength) return false;
  const offsets = packed.offsets as Int32Array;
  const data = slabOf(packed, offsets[5 * index] as number);
  const start = (offsets[5 * index + 2] as number) - 2 * hashLength;
  for (let i = 0; i < hashLength; i += 1) if (data[start + i] !== hash.charCodeAt(i)) return false;
  return true;
}

// One Buffer view per slab of a packed answer, made once per answer (not one per entity: that was half the
// cost of unpacking).
const views = new WeakMap<PackedAnalysis, Buffer[]>();

// The answer last looked at and its views: a diff asks for the same answer's slabs ten thousand times in a row
// (one answer is held this way, until another is looked at).
let lastPacked: PackedAnalysis | undefined;
let lastViews: Buffer[] = [];

function slabOf(packed: PackedAnalysis, slab: number): Buffer {
  if (packed !== lastPacked) {
    let list = views.get(packed);
    if (!list) {
      list = (packed.slabs ?? []).map((buffer) => Buffer.from(buffer));
      views.set(packed, list);
    }
    lastPacked = packed;
    lastViews = list;
  }
  return lastViews[slab] as Buffer;
}

/** How many entities a packed analysis carries (0 when they were left out). */
export function packedCount(packed: PackedAnalysis): number {
  return packed.offsets === undefined ? 0 : packed.offsets.length / 5;
}
