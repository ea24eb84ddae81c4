// The versioned history of one feed: entities with the version they last changed at, tombstones for
// removed ones (draft -13 §4.2), and the (version, id)-ordered deltas that enhanced GET serves.
// Pure and JSON-serializable so the store can keep it as is; never mutates its inputs.
import { randomBytes } from 'node:crypto';
import { type Entity, groupEntities } from '../ical/entities.ts';
import { componentHash, entityHash } from '../ical/normalize.ts';
import { tombstone } from '../ical/serialize.ts';
import { type Component, type ContentLine, propertyValue, type SplitCalendar } from '../ical/split.ts';

/** One live entity: its normalized-content hash, the version it last changed at, its components. */
export type HistoryEntity = { hash: string; version: number; components: Component[] };

/** One removed entity: the version it was removed at, when (ms), and its STATUS:DELETED skeleton. */
export type HistoryTombstone = { version: number; removedAt: number; skeleton: Component };

/** A feed's snapshot and change record (SPEC "snapshot", "version"); plain data only. */
export type FeedHistory = {
  /** Random id minted with the history: tokens carry it, so a rebuilt history refuses old ones. */
  lineage: string;
  version: number;
  frame: { properties: ContentLine[]; timezones: Component[] };
  entities: Record<string, HistoryEntity>;
  tombstones: Record<string, HistoryTombstone>;
  floor: number;
};

/** What one read did to the history; `changed` is false when the normalized content is the same. */
export type SnapshotResult = {
  history: FeedHistory;
  changed: boolean;
  added: string[];
  modified: string[];
  removed: string[];
};

/** A delta position: the client holds every change up to `version`, and with `after` also those of
 * version + 1 up to and including that id. */
export type SyncPosition = { version: number; after?: string };

/** The changes after a position, ordered by (version, id), and where the next request resumes. */
export type Changes = { entities: Component[][]; tombstones: Component[]; next: SyncPosition; truncated: boolean };

// Before the first read: version 0, so the first read is version 1; no removal yet, so the floor is 0.
const emptyHistory: Omit<FeedHistory, 'lineage'> = {
  version: 0, frame: { properties: [], timezones: [] }, entities: {}, tombstones: {}, floor: 0,
};

/** Folds one complete read into the history; the version moves by exactly one when anything changed. */
export function applySnapshot(history: FeedHistory | undefined, calendar: SplitCalendar, now: number): SnapshotResult {
  const previous: FeedHistory = history ?? { ...emptyHistory, lineage: randomBytes(6).toString('base64url') };
  const version = previous.version + 1;
  const entities: Record<string, HistoryEntity> = {};
  const tombstones: Record<string, HistoryTombstone> = { ...previous.tombstones };
  const added: string[] = [];
  const modified: string[] = [];
  const removed: string[] = [];

  for (const entity of groupEntities(calendar.components)) {
    const hash = entityHash(entity);
    const held = previous.entities[entity.id];
    // Same hash: keep the stored entry (and its DTSTAMP), so DTSTAMP churn is no change (SPEC "GET").
    if (held?.hash === hash) {
      entities[entity.id] = held;
      continue;
    }
    entities[entity.id] = { hash, version, components: entity.components };
    if (held) {
      modified.push(entity.id);
    } else {
      added.push(entity.id);
      // An entity that comes back is served as an entity again; its tombstone would contradict it.
      delete tombstones[entity.id];
    }
  }

  const dtstamp = utcStamp(now);
  for (const [id, held] of Object.entries(previous.entities)) {
    if (entities[id]) continue;
    removed.push(id);
    tombstones[id] = { version, removedAt: now, skeleton: tombstone(storedEntity(id, held), dtstamp) };
  }

  const frame = { properties: calendar.properties, timezones: calendar.timezones };
  const frameChanged = !history || frameHash(frame) !== frameHash(previous.frame);
  if (!frameChanged && added.length === 0 && modified.length === 0 && removed.length === 0) {
    return { history: previous, changed: false, added, modified, removed };
  }
  return {
    history: {
      lineage: previous.lineage,
      version,
      frame: frameChanged ? frame : previous.frame,
      entities,
      tombstones,
      floor: previous.floor,
    },
    changed: true,
    added,
    modified,
    removed,
  };
}

/** Drops tombstones removed more than `retentionMs` ago and raises `floor` to the newest pruned
 * removal's version (SPEC: tokens stay valid until the tombstones they need are past retention). */
export function pruneTombstones(history: FeedHistory, now: number, retentionMs: number): FeedHistory {
  const tombstones: Record<string, HistoryTombstone> = {};
  let floor = history.floor;
  for (const [id, held] of Object.entries(history.tombstones)) {
    // A token at the removal's own version was minted after it and needs no tombstone: floor, not floor + 1.
    if (now - held.removedAt > retentionMs) floor = Math.max(floor, held.version);
    else tombstones[id] = held;
  }
  if (Object.keys(tombstones).length === Object.keys(history.tombstones).length) return history;
  return { ...history, tombstones, floor };
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
  const pending: { id: string; version: number; entity?: HistoryEntity; tombstone?: HistoryTombstone }[] = [];
  const isAfter = (id: string, version: number) => version > since.version
    && !(since.after !== undefined && version === since.version + 1 && id <= since.after);
  for (const [id, entity] of Object.entries(history.entities)) {
    if (isAfter(id, entity.version)) pending.push({ id, version: entity.version, entity });
  }
  for (const [id, held] of Object.entries(history.tombstones)) {
    if (isAfter(id, held.version)) pending.push({ id, version: held.version, tombstone: held });
  }
  // Versions only grow, so a change made while a client pages lands after its position: nothing is
  // skipped, and an entity changed again is sent again only under its new version.
  pending.sort((a, b) => a.version - b.version || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // A limit below one would never progress; the draft lets the server choose the page size.
  const size = limit === undefined ? pending.length : Math.max(1, Math.floor(limit));
  const sent = pending.slice(0, size);
  const last = sent.at(-1);
  const truncated = pending.length > sent.length && last !== undefined;
  return {
    entities: sent.flatMap((c) => (c.entity ? [c.entity.components] : [])),
    tombstones: sent.flatMap((c) => (c.tombstone ? [c.tombstone.skeleton] : [])),
    next: truncated ? { version: last.version - 1, after: last.id } : { version: history.version },
    truncated,
  };
}

/** The live entities as components, in id order: the body of a full enhanced GET answer. */
export function currentComponents(history: FeedHistory): Component[] {
  return Object.keys(history.entities).sort().flatMap((id) => history.entities[id]?.components ?? []);
}

// RFC 5545 §3.3.5 UTC form, the DTSTAMP of a tombstone is the read that noticed the removal.
function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

// The frame hashes like a component, so property order and DTSTAMP (if any) do not count.
function frameHash(frame: FeedHistory['frame']): string {
  return componentHash({ type: 'VCALENDAR', lines: frame.properties, children: frame.timezones });
}

// groupEntities gives `uid` only for UID-bearing entities; a content identity has none.
function storedEntity(id: string, held: HistoryEntity): Entity {
  const first = held.components[0];
  const uid = (first && propertyValue(first, 'UID')?.trim()) || undefined;
  return { id, ...(uid === undefined ? {} : { uid }), components: held.components };
}
