// The versioned history of one feed: entities with the version they last changed at, tombstones for
// removed ones (draft -13 §4.2), and the (version, id)-ordered deltas that enhanced GET serves.
// Entities are kept as the text the sidecar serves, not as parsed objects (analyze.ts makes them), so a
// history costs about its feed's size. Pure: never mutates its inputs.
import { randomBytes } from 'node:crypto';
import { contentTag } from '../ical/analyze.ts';
import type { FrameSummary } from '../ical/analyze.ts';
import { assembleCalendar } from '../ical/serialize.ts';
import { tombstoneInUtc, tombstoneZone } from '../ical/tombstone-zone.ts';
import { createSlice, eachInSlices, type Slice, sortInSlices } from '../util/yield.ts';
import { hasPackedHash, hasPackedId, type PackedAnalysis, packedCount, packedId, type RecordPlaces, recordPlaces,
  sameRecords, unpackEntity } from '../work/feed-tasks.ts';

/** One live entity: its content hashes, the version it last changed at, its text and tombstone stub. */
export type HistoryEntity = { hash: string; version: number; text: string; content: string; stub: string };

/** One removed entity: the version it was removed at, when (ms), its STATUS:DELETED skeleton text, and the
 * TZID its DTSTART names, if any (its VTIMEZONE is in the history's `zones`). */
export type HistoryTombstone = { version: number; removedAt: number; text: string; tzid?: string };

/** A feed's snapshot and change record (SPEC "snapshot", "version"). */
export type FeedHistory = {
  /** Random id minted with the history: tokens carry it, so a rebuilt history refuses old ones. */
  readonly lineage: string;
  readonly version: number;
  readonly frame: FrameSummary;
  readonly entities: ReadonlyMap<string, HistoryEntity>;
  readonly tombstones: ReadonlyMap<string, HistoryTombstone>;
  /** VTIMEZONE text by TZID, for each TZID a tombstone names, from the last snapshot that had it: a delta
   * carries the ones the frame no longer has (SPEC "Deltas are valid iCalendar"). Only those TZIDs. */
  readonly zones: ReadonlyMap<string, string>;
  readonly floor: number;
  /** The version the frame (VCALENDAR properties, VTIMEZONEs) last changed at. */
  readonly frameVersion: number;
  /** Content tag of the snapshot: equal for equal normalized content, the semantic ETag's value. */
  readonly tag: string;
  /** When (ms) the version last moved. */
  readonly changedAt: number;
  /** Recent tags and their versions, oldest first: a client's ETag names the version it holds. */
  readonly tags: readonly [tag: string, version: number][];
  /** Fingerprint (fingerprint.ts) of the last read with exactly this content, if known. */
  readonly fingerprint?: string;
};

/** What one read did to the history; `changed` is false when the normalized content is the same. */
export type SnapshotResult = {
  history: FeedHistory;
  changed: boolean;
  added: string[];
  modified: string[];
  removed: string[];
  /** Entities that came back under a new UID with the same content, and kept their old identity. */
  rekeyed: number;
};

/**
 * A delta position: the client holds every change up to `version`, and with `after` also those of
 * version + 1 up to and including that id. An `initial` position is a paged first sync started at
 * `version`: the client holds the live entities of that version up to and including `after` (in id
 * order), and still needs the rest of them and every change made since.
 */
export type SyncPosition = { version: number; after?: string; initial?: boolean };

/** The changes after a position, ordered by (version, id), as texts, the VTIMEZONEs its tombstones need
 * that the frame no longer has, and where the next request resumes. */
export type Changes = {
  entities: string[];
  tombstones: string[];
  timezones: string[];
  next: SyncPosition;
  truncated: boolean;
};

// How many recent tags a history remembers for `Prefer: return=minimal` (older ones get the full feed).
const maxTags = 64;

// Before the first read: version 0, so the first read is version 1; no removal yet, so the floor is 0.
function emptyHistory(): FeedHistory {
  return {
    lineage: randomBytes(6).toString('base64url'),
    version: 0,
    frame: { properties: '', timezones: [], hash: '' },
    entities: new Map(),
    tombstones: new Map(),
    zones: new Map(),
    floor: 0,
    frameVersion: 0,
    tag: '',
    changedAt: 0,
    tags: [],
  };
}

/** Options of applyAnalysis. */
export type ApplyOptions = {
  /** The read's fingerprint, kept so the next identical read can skip this work. */
  fingerprint?: string;
  /** Tombstones kept at most; past it the oldest go and the floor rises (their tokens get 409). */
  maxTombstones?: number;
};

/**
 * Folds one complete, analysed read into the history; the version moves by exactly one when anything
 * changed. Only new and changed entities' texts are decoded from the packed answer.
 */
export function applyAnalysis(history: FeedHistory | undefined, packed: PackedAnalysis, now: number,
  options: ApplyOptions = {}): SnapshotResult {
  const steps = applying(history, packed, now, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** applyAnalysis in slices: a 25,000-entity first read never holds the event loop more than `slice` allows. */
export async function applyAnalysisInSlices(history: FeedHistory | undefined, packed: PackedAnalysis, now: number,
  options: ApplyOptions, slice: Slice): Promise<SnapshotResult> {
  const steps = applying(history, packed, now, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (slice.due()) await slice.pause();
  }
}

// Entities handled between two looks at the clock.
const stride = 256;

// The work of applyAnalysis; it yields every `stride` entities so a caller may let the event loop run.
function* applying(history: FeedHistory | undefined, packed: PackedAnalysis, now: number,
  options: ApplyOptions): Generator<void, SnapshotResult> {
  const previous = history ?? emptyHistory();
  const version = previous.version + 1;
  const tombstones = new Map(previous.tombstones);
  // Indexes of the entities the history does not have: only theirs (and changed ones) are decoded whole.
  const fresh: number[] = [];
  const modified: string[] = [];

  // Each entity's id, and its stored entry when it changed (undefined: the history's entry stands). A
  // re-read mostly lists the history's entities in its order: its hash is then compared in place with the
  // entry of the history's next key, and that key (hashed once already) and its entry stand for it,
  // nothing decoded, hashed or looked up. An equal hash is the same id: the hash covers the UID line, and
  // an entity without one is keyed by its hash (entities.ts); only a changed entity's id is compared.
  const count = packedCount(packed);
  const ids: (string | undefined)[] = new Array(count);
  const changes = new Map<number, HistoryEntity>();
  const { keys, values } = orderOf(previous.entities);
  // The entities whose record is the one the history's own read had at that position: unchanged, nothing read.
  const prior = builtFrom.get(previous.entities);
  const same = prior ? sameRecords(packed, prior) : undefined;
  // True while each entity so far is the history's at the same position.
  let inOrder = true;
  let at = 0;
  let matched = 0;
  for (let i = 0; i < count; i += 1) {
    if (i % stride === stride - 1) yield;
    const key = keys[at];
    let id: string;
    let held: HistoryEntity | undefined;
    if (key !== undefined && ((same !== undefined && inOrder && same[i] === 1)
      || hasPackedHash(packed, i, (values[at] as HistoryEntity).hash))) {
      ids[i] = key;
      at += 1;
      matched += 1;
      continue;
    }
    if (key !== undefined && hasPackedId(packed, i, key)) {
      id = key;
      held = values[at];
      at += 1;
    } else {
      inOrder = false;
      id = packedId(packed, i);
      // One removed entity before it: the history's order resumes after its key.
      if (keys[at + 1] === id) at += 2;
      held = previous.entities.get(id);
    }
    if (!held) {
      fresh.push(i);
      continue;
    }
    ids[i] = id;
    matched += 1;
    // Same hash: keep the stored entry (and its DTSTAMP), so DTSTAMP churn is no change (SPEC "GET").
    if (!hasPackedHash(packed, i, held.hash)) {
      changes.set(i, stored(unpackEntity(packed, i), version));
      modified.push(id);
    }
  }

  const frameChanged = !history || packed.frame.hash !== previous.frame.hash;
  if (!frameChanged && fresh.length === 0 && modified.length === 0 && matched === previous.entities.size) {
    // Every entity the history has, each unchanged, in any order: the stored history stands.
    const fingerprint = options.fingerprint;
    const same = fingerprint === undefined || fingerprint === previous.fingerprint;
    const kept = same ? previous : { ...previous, fingerprint };
    return { history: kept, changed: false, added: [], modified, removed: [], rekeyed: 0 };
  }
  let entities: ReadonlyMap<string, HistoryEntity>;
  // The read is the history's entities in its order, some changed in place: the history's map copied with
  // the changes set keeps every key where it was (what building it in the read's order gives), and
  // nothing was added, re-keyed or removed. The order's columns go on with it, the changed entries set.
  const inPlace = inOrder && count === keys.length;
  if (inPlace) {
    const nextValues = values.slice();
    for (const [i, entry] of changes) nextValues[i] = entry;
    entities = new KeptKeys(indexOf(previous.entities, keys), keys, nextValues);
    rememberPlaces(entities, packed);
  } else {
    const built = new Map<string, HistoryEntity>();
    for (let i = 0; i < count; i += 1) {
      if (i % stride === stride - 1) yield;
      const id = ids[i];
      if (id !== undefined) built.set(id, changes.get(i) ?? previous.entities.get(id) as HistoryEntity);
    }
    entities = built;
  }
  // Twins found below join the map being built (a read in place has none: nothing was added).
  const adding = entities instanceof Map ? entities : undefined;

  // SPEC "Guarantees": an exporter that mints new UIDs on every request sends the same events under
  // new ids. A new entity whose content (UID aside) equals a vanished one's is that entity: it keeps
  // the old identity, version and text, so nothing churns and clients keep a stable UID.
  const vanished = new Map<string, string[]>();
  if (fresh.length > 0) {
    let seen = 0;
    // Keys then get: iterating entries made an array per entity.
    for (const id of previous.entities.keys()) {
      if (++seen % stride === 0) yield;
      if (entities.has(id)) continue;
      const held = previous.entities.get(id) as HistoryEntity;
      const twins = vanished.get(held.content);
      if (twins) twins.push(id);
      else vanished.set(held.content, [id]);
    }
  }
  const added: string[] = [];
  let rekeyed = 0;
  let unburied = false;
  for (const [i, index] of fresh.entries()) {
    if (i % stride === stride - 1) yield;
    const entity = unpackEntity(packed, index);
    const twin = vanished.get(entity.content)?.pop();
    const held = twin === undefined ? undefined : previous.entities.get(twin);
    if (twin !== undefined && held) {
      adding?.set(twin, held);
      rekeyed += 1;
      continue;
    }
    adding?.set(entity.id, stored(entity, version));
    added.push(entity.id);
    // An entity that comes back is served as an entity again; its tombstone would contradict it.
    if (tombstones.delete(entity.id)) unburied = true;
  }

  const zones = new Map(previous.zones);
  // A remembered zone is the one of the last snapshot that had it.
  if (frameChanged && zones.size > 0) {
    for (const [tzid, text] of frameZones(packed.frame)) if (zones.has(tzid)) zones.set(tzid, text);
  }
  // Where a new tombstone's zone comes from: this read's frame, the previous one (the zone left with the
  // event), or another tombstone's. Looked up only for removed entities whose DTSTART names a TZID.
  const zoneOf = (tzid: string) => (tzid === '' ? undefined
    : frameZones(packed.frame).get(tzid) ?? frameZones(previous.frame).get(tzid) ?? zones.get(tzid));
  const removed: string[] = [];
  const dtstamp = utcStamp(now);
  let looked = 0;
  // Nothing was removed from a read in place.
  for (const id of inPlace ? [] : previous.entities.keys()) {
    if (++looked % stride === 0) yield;
    if (entities.has(id)) continue;
    const held = previous.entities.get(id) as HistoryEntity;
    removed.push(id);
    tombstones.set(id, buried(tombstoneText(held.stub, dtstamp), version, now, zoneOf, zones));
  }

  if (!frameChanged && added.length === 0 && modified.length === 0 && removed.length === 0) {
    // Same content: the stored history stands.
    const fingerprint = options.fingerprint;
    const same = fingerprint === undefined || fingerprint === previous.fingerprint;
    const kept = same ? previous : { ...previous, fingerprint };
    return { history: kept, changed: false, added, modified, removed, rekeyed };
  }
  // Re-keyed twins keep their old ids, so the analysis's tag (over the new ids) is recomputed then.
  const tag = rekeyed > 0
    ? contentTag(packed.frame.hash, [...entities].map(([id, e]) => ({ id, hash: e.hash })))
    : packed.tag;
  // A first read lists its entities in the read's order: its records' places stand for them too.
  if (!history || previous.entities.size === 0) rememberPlaces(entities, packed);
  const tags = [...previous.tags.filter(([t]) => t !== tag), [tag, version] as [string, number]].slice(-maxTags);
  let next: FeedHistory = {
    lineage: previous.lineage,
    version,
    frame: frameChanged ? packed.frame : previous.frame,
    entities,
    tombstones,
    zones: unburied ? zonesInUse(tombstones, zones) : zones,
    floor: previous.floor,
    frameVersion: frameChanged ? version : previous.frameVersion,
    tag,
    changedAt: now,
    tags,
    ...(options.fingerprint === undefined ? {} : { fingerprint: options.fingerprint }),
  };
  if (options.maxTombstones !== undefined) next = capTombstones(next, options.maxTombstones);
  return { history: next, changed: true, added, modified, removed, rekeyed };
}

/**
 * The entities of a version that a read in place made: the keys of the version before (and the index of their
 * positions) shared with it, the entries its own. A re-read that changed one of 10,000 entities then costs a copy
 * of one array, not of a 10,000-entry map. Read-only, like every history's map.
 */
class KeptKeys implements ReadonlyMap<string, HistoryEntity> {
  readonly index: ReadonlyMap<string, number>;
  readonly order: Order;
  constructor(index: ReadonlyMap<string, number>, keys: readonly string[], values: readonly HistoryEntity[]) {
    this.index = index;
    this.order = { keys, values };
  }

  get size(): number {
    return this.order.keys.length;
  }

  get(id: string): HistoryEntity | undefined {
    const at = this.index.get(id);
    return at === undefined ? undefined : this.order.values[at];
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  keys(): MapIterator<string> {
    return this.order.keys[Symbol.iterator]();
  }

  values(): MapIterator<HistoryEntity> {
    return this.order.values[Symbol.iterator]();
  }

  * entries(): MapIterator<[string, HistoryEntity]> {
    const { keys, values } = this.order;
    for (let i = 0; i < keys.length; i += 1) yield [keys[i] as string, values[i] as HistoryEntity];
  }

  [Symbol.iterator](): MapIterator<[string, HistoryEntity]> {
    return this.entries();
  }

  forEach(callback: (value: HistoryEntity, key: string, map: ReadonlyMap<string, HistoryEntity>) => void,
    thisArg?: unknown): void {
    const { keys, values } = this.order;
    for (let i = 0; i < keys.length; i += 1) {
      callback.call(thisArg, values[i] as HistoryEntity, keys[i] as string, this);
    }
  }

  get [Symbol.toStringTag](): string {
    return 'Map';
  }
}

// Each key's position: the version before's when it kept its keys too, else made once per map (and kept with it,
// like its order: every version read in place after it shares it).
const indexes = new WeakMap<ReadonlyMap<string, HistoryEntity>, ReadonlyMap<string, number>>();

function indexOf(entities: ReadonlyMap<string, HistoryEntity>, keys: readonly string[]): ReadonlyMap<string, number> {
  if (entities instanceof KeptKeys) return entities.index;
  let index = indexes.get(entities);
  if (!index) {
    const made = new Map<string, number>();
    for (let i = 0; i < keys.length; i += 1) made.set(keys[i] as string, i);
    index = made;
    indexes.set(entities, index);
  }
  return index;
}

// For an entities map listed in the order of the packed answer that made it, where that answer's records lay:
// the next read of the feed (by the same worker, which keeps them) names the same records for what did not change.
const builtFrom = new WeakMap<ReadonlyMap<string, HistoryEntity>, RecordPlaces>();

function rememberPlaces(entities: ReadonlyMap<string, HistoryEntity>, packed: PackedAnalysis): void {
  const places = recordPlaces(packed);
  if (places && entities.size === packedCount(packed)) builtFrom.set(entities, places);
}

/** A history's entity keys and entries in its order, as arrays (see orderOf). */
type Order = { keys: readonly string[]; values: readonly HistoryEntity[] };

// Each entities map's order, made at most once per map (a read in place hands its own on): what a re-read
// in the history's order walks instead of looking each id up. Two references per entity, which
// historyBytesInSlices counts.
const orders = new WeakMap<ReadonlyMap<string, HistoryEntity>, Order>();

function orderOf(entities: ReadonlyMap<string, HistoryEntity>): Order {
  if (entities instanceof KeptKeys) return entities.order;
  let order = orders.get(entities);
  if (!order) {
    order = { keys: [...entities.keys()], values: [...entities.values()] };
    orders.set(entities, order);
  }
  return order;
}

// A removed entity's tombstone: its DTSTART's TZID kept with that VTIMEZONE put in `zones`, or, when no
// snapshot ever had that VTIMEZONE, its DTSTART in UTC (tombstone-zone.ts says how).
function buried(text: string, version: number, now: number, zoneOf: (tzid: string) => string | undefined,
  zones: Map<string, string>): HistoryTombstone {
  const tzid = tombstoneZone(text);
  if (tzid === undefined) return { version, removedAt: now, text };
  const zone = zoneOf(tzid);
  if (zone === undefined) return { version, removedAt: now, text: tombstoneInUtc(text) };
  zones.set(tzid, zone);
  return { version, removedAt: now, text, tzid };
}

// A frame's VTIMEZONEs by TZID (the first of a repeated one, as ical.js picks), made once per frame. The
// TZID property is TEXT (RFC 5545 §3.8.3.1: `\,` escaped), the TZID parameter is not: keyed unescaped.
const zonesByFrame = new WeakMap<FrameSummary, Map<string, string>>();

function frameZones(frame: FrameSummary): Map<string, string> {
  let zones = zonesByFrame.get(frame);
  if (!zones) {
    zones = new Map();
    for (const [raw, text] of frame.timezones) {
      const tzid = raw.includes('\\') ? raw.replace(/\\([\\;,])/g, '$1') : raw;
      if (!zones.has(tzid)) zones.set(tzid, text);
    }
    zonesByFrame.set(frame, zones);
  }
  return zones;
}

// The zones some tombstone still names: a zone goes with the last tombstone that needed it.
function zonesInUse(tombstones: ReadonlyMap<string, HistoryTombstone>,
  zones: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  if (zones.size === 0) return zones;
  const kept = new Map<string, string>();
  for (const { tzid } of tombstones.values()) {
    const zone = tzid === undefined ? undefined : zones.get(tzid);
    if (tzid !== undefined && zone !== undefined) kept.set(tzid, zone);
  }
  return kept.size === zones.size ? zones : kept;
}

/** A tombstone as loaded from the store: the TZID its DTSTART names is read from its text. */
export function loadedTombstone(version: number, removedAt: number, text: string): HistoryTombstone {
  const tzid = tombstoneZone(text);
  return tzid === undefined ? { version, removedAt, text } : { version, removedAt, text, tzid };
}

/**
 * A loaded history made whole. One written before zones were kept names TZIDs in tombstones without
 * their VTIMEZONE: each gets the frame's, or else its DTSTART in UTC. Otherwise the same history.
 */
export function withTombstoneZones(history: FeedHistory): FeedHistory {
  let zones: Map<string, string> | undefined;
  let tombstones: Map<string, HistoryTombstone> | undefined;
  for (const [id, held] of history.tombstones) {
    if (held.tzid === undefined || history.zones.has(held.tzid) || zones?.has(held.tzid)) continue;
    zones ??= new Map(history.zones);
    tombstones ??= new Map(history.tombstones);
    const zone = held.tzid === '' ? undefined : frameZones(history.frame).get(held.tzid);
    if (zone === undefined) {
      tombstones.set(id, { version: held.version, removedAt: held.removedAt, text: tombstoneInUtc(held.text) });
    } else {
      zones.set(held.tzid, zone);
    }
  }
  if (!tombstones || !zones) return history;
  return { ...history, tombstones, zones };
}

// A new or changed entity as the history keeps it: its texts decoded from the packed answer now.
function stored(entity: ReturnType<typeof unpackEntity>, version: number): HistoryEntity {
  return { hash: entity.hash, version, text: entity.text(), content: entity.content, stub: entity.stub() };
}

/** The version a client holding content `tag` has, when that tag is still known and usable. */
export function versionOfTag(history: FeedHistory, tag: string): number | undefined {
  const found = history.tags.findLast(([t]) => t === tag);
  return found && found[1] >= history.floor ? found[1] : undefined;
}

/** Drops tombstones removed more than `retentionMs` ago and raises `floor` to the newest pruned
 * removal's version (SPEC: tokens stay valid until the tombstones they need are past retention). */
export function pruneTombstones(history: FeedHistory, now: number, retentionMs: number): FeedHistory {
  const tombstones = new Map<string, HistoryTombstone>();
  let floor = history.floor;
  for (const [id, held] of history.tombstones) {
    // A token at the removal's own version was minted after it and needs no tombstone: floor, not floor + 1.
    if (now - held.removedAt > retentionMs) floor = Math.max(floor, held.version);
    else tombstones.set(id, held);
  }
  if (tombstones.size === history.tombstones.size) return history;
  return { ...history, tombstones, zones: zonesInUse(tombstones, history.zones), floor };
}

/** Keeps at most `max` tombstones, the newest; the floor rises to the newest dropped one's version, so a
 * feed that churns cannot grow its stored state without bound (SPEC "Guarantees"). */
export function capTombstones(history: FeedHistory, max: number): FeedHistory {
  if (history.tombstones.size <= max) return history;
  const ordered = [...history.tombstones].sort(([, a], [, b]) => a.version - b.version);
  const dropped = ordered.slice(0, ordered.length - max);
  const floor = Math.max(history.floor, ...dropped.map(([, t]) => t.version));
  // Tombstones at the floor's version are of no use to a token at the floor: keep only newer ones.
  const tombstones = new Map(ordered.filter(([, t]) => t.version > floor));
  return { ...history, tombstones, zones: zonesInUse(tombstones, history.zones), floor };
}

/** True when a token can still get a complete delta: minted by this history (same lineage), not
 * from before a pruned removal, not from the future; otherwise the answer is 409 (draft §4.3). */
export function isTokenUsable(history: FeedHistory, token: { lineage: string; version: number }): boolean {
  const { version } = token;
  return (
    token.lineage === history.lineage &&
    Number.isSafeInteger(version) &&
    version >= history.floor &&
    version <= history.version
  );
}

/** Every entity and tombstone changed after `since`, at most `limit` of them (draft §4.4 paging). */
export function changesSince(history: FeedHistory, since: SyncPosition, limit?: number): Changes {
  type Pending = { id: string; version: number; initial: boolean; text: string; tombstone: boolean; tzid?: string };
  const pending: Pending[] = [];
  const isAfter = (id: string, version: number) => version > since.version
    && !(!since.initial && since.after !== undefined && version === since.version + 1 && id <= since.after);
  for (const [id, entity] of history.entities) {
    // A first sync's entities not sent yet, then (below) everything changed since it started.
    if (since.initial && entity.version <= since.version) {
      const unsent = since.after === undefined || id > since.after;
      if (unsent) pending.push({ id, version: entity.version, initial: true, text: entity.text, tombstone: false });
    } else if (isAfter(id, entity.version)) {
      pending.push({ id, version: entity.version, initial: false, text: entity.text, tombstone: false });
    }
  }
  for (const [id, held] of history.tombstones) {
    if (!isAfter(id, held.version)) continue;
    pending.push({ id, version: held.version, initial: false, text: held.text, tombstone: true,
      ...(held.tzid === undefined ? {} : { tzid: held.tzid }) });
  }
  // The rest of a first sync goes first, in id order; then changes in (version, id) order. Versions only
  // grow, so a change made while a client pages lands after its position: nothing is skipped, and an
  // entity changed again is sent again only under its new version.
  pending.sort((a, b) => (a.initial === b.initial ? 0 : a.initial ? -1 : 1)
    || (a.initial ? 0 : a.version - b.version)
    || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // A limit below one would never progress; the draft lets the server choose the page size.
  const size = limit === undefined ? pending.length : Math.max(1, Math.floor(limit));
  const sent = pending.slice(0, size);
  const last = sent.at(-1);
  const truncated = pending.length > sent.length && last !== undefined;
  let next: SyncPosition = { version: history.version };
  if (truncated && last.initial) next = { version: since.version, after: last.id, initial: true };
  else if (truncated) next = { version: last.version - 1, after: last.id };
  return {
    entities: sent.flatMap((c) => (c.tombstone ? [] : [c.text])),
    tombstones: sent.flatMap((c) => (c.tombstone ? [c.text] : [])),
    timezones: leftZones(history, sent.flatMap((c) => (c.tzid === undefined ? [] : [c.tzid]))),
    next,
    truncated,
  };
}

// The VTIMEZONEs of these tombstone TZIDs that the frame no longer has, once each.
function leftZones(history: FeedHistory, tzids: readonly string[]): string[] {
  if (tzids.length === 0) return [];
  const inFrame = frameZones(history.frame);
  const out = new Map<string, string>();
  for (const tzid of tzids) {
    const zone = inFrame.has(tzid) ? undefined : history.zones.get(tzid);
    if (zone !== undefined) out.set(tzid, zone);
  }
  return [...out.values()];
}

// Sorting ten thousand ids is done once per version, not once per full answer.
const sortedIds = new WeakMap<FeedHistory, string[]>();

/** The live entities' texts, in id order: the body of a full enhanced GET answer. */
export function currentTexts(history: FeedHistory): string[] {
  let ids = sortedIds.get(history);
  if (!ids) {
    ids = [...history.entities.keys()].sort();
    sortedIds.set(history, ids);
  }
  return ids.map((id) => history.entities.get(id)?.text ?? '');
}

/** currentTexts, its sort done in slices (the one the event loop uses). */
export async function currentTextsInSlices(history: FeedHistory): Promise<string[]> {
  let ids = sortedIds.get(history);
  if (!ids) {
    ids = await sortInSlices([...history.entities.keys()]);
    sortedIds.set(history, ids);
  }
  return ids.map((id) => history.entities.get(id)?.text ?? '');
}

/** About what a history keeps in memory, in bytes (the cache bound counts this), summed in slices. */
export async function historyBytesInSlices(history: FeedHistory): Promise<number> {
  let bytes = 1_000;
  await eachInSlices(history.entities.values(), (entity) => {
    // The entry, and its two references in the history's order (orderOf).
    bytes += 2 * (entity.text.length + entity.stub.length) + 316;
  });
  await eachInSlices(history.tombstones.values(), (tombstone) => {
    bytes += 2 * tombstone.text.length + 100;
  });
  for (const [tzid, zone] of history.zones) bytes += 2 * (tzid.length + zone.length) + 100;
  return bytes;
}

/** A calendar with the history's frame (properties and every VTIMEZONE), the remembered VTIMEZONEs
 * `timezones` (a delta's tombstones need them: Changes.timezones), and these entity texts. */
export function calendarText(history: FeedHistory, texts: readonly string[],
  timezones: readonly string[] = []): string {
  return assembleCalendar(history.frame.properties,
    [...history.frame.timezones.map(([, tz]) => tz), ...timezones, ...texts]);
}

// Entity texts encoded at once when a whole feed is written out.
const piecesPerChunk = 1_000;

/** calendarBody for a whole feed, encoded a thousand entities at a time so the event loop keeps running. */
export async function calendarBuffer(history: FeedHistory, texts: string[]): Promise<Buffer> {
  return Buffer.concat(await calendarPieces(history, texts));
}

/** calendarBuffer's bytes in pieces of a thousand entities, for an answer written piece by piece. */
export async function calendarPieces(history: FeedHistory, texts: string[]): Promise<Buffer[]> {
  if (texts.length <= piecesPerChunk) return [Buffer.from(calendarText(history, texts), 'utf8')];
  const slice = createSlice();
  const frame = calendarText(history, []);
  const end = 'END:VCALENDAR\r\n';
  const chunks = [Buffer.from(frame.slice(0, frame.length - end.length), 'utf8')];
  for (let at = 0; at < texts.length; at += piecesPerChunk) {
    chunks.push(Buffer.from(texts.slice(at, at + piecesPerChunk).join(''), 'utf8'));
    if (slice.due()) await slice.pause();
  }
  chunks.push(Buffer.from(end, 'utf8'));
  return chunks;
}

/** The draft -13 skeleton of a removed entity from its stub: UID, DTSTAMP, its last DTSTART, STATUS:DELETED. */
export function tombstoneText(stub: string, dtstamp: string): string {
  const newline = stub.indexOf('\n');
  const type = stub.slice(0, newline);
  const rest = stub.slice(newline + 1);
  // The stub is the UID line then the DTSTART line (if any), each ending in CRLF.
  const uidEnd = rest.indexOf('\r\nDTSTART');
  const uid = uidEnd === -1 ? rest : rest.slice(0, uidEnd + 2);
  const dtstart = uidEnd === -1 ? '' : rest.slice(uidEnd + 2);
  return `BEGIN:${type}\r\n${uid}DTSTAMP:${dtstamp}\r\n${dtstart}STATUS:DELETED\r\nEND:${type}\r\n`;
}

// RFC 5545 §3.3.5 UTC form, the DTSTAMP of a tombstone is the read that noticed the removal.
function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}
