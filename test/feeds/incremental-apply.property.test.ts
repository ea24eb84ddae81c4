// Property: a re-read analysed with the blocks of the last read (packReusing, as the worker keeps them)
// and applied to the history gives exactly what the same read analysed from scratch gives: the same
// entities (texts, versions, order), tombstones, tag, version and lists of changes, whatever the edits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applyAnalysis, type FeedHistory, type SnapshotResult } from '../../src/feeds/history.ts';
import { packCalendar, packedCount, packReusing, type ReusedPack, unpackEntity } from '../../src/work/feed-tasks.ts';

type Event = {
  uid: string | undefined; start: number; summary: number; alarm: boolean; sequence?: number; rid?: number;
};
type Edit =
  | { kind: 'add'; uidless: boolean; start: number; alarm: boolean }
  | { kind: 'remove'; pick: number }
  | { kind: 'change'; pick: number }
  | { kind: 'rekey'; pick: number }
  | { kind: 'move'; from: number; to: number }
  | { kind: 'reverse' }
  | { kind: 'churn' }
  // A copy of an event: under its UID (a duplicate, maybe a later SEQUENCE), as an override of it
  // (RECURRENCE-ID), or under a new UID (same content: a twin a re-keyed entity may inherit).
  | { kind: 'copy'; pick: number; as: 'duplicate' | 'override' | 'twin'; sequence: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), uidless: fc.boolean(), start: fc.integer({ min: 0, max: 40 }), alarm: fc.boolean() }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('change' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('rekey' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('move' as const), from: fc.nat(), to: fc.nat() }),
  fc.constant({ kind: 'reverse' as const }),
  fc.constant({ kind: 'churn' as const }),
  fc.record({ kind: fc.constant('copy' as const), pick: fc.nat(), as: fc.constantFrom('duplicate' as const, 'override' as const, 'twin' as const),
    sequence: fc.integer({ min: 0, max: 2 }) }),
);

const day = (n: number) => new Date(Date.UTC(2026, 0, 1 + n)).toISOString().slice(0, 10).replaceAll('-', '');

// CRLF, one DTSTAMP per event (the read's stamp: every read regenerates them), a folded DESCRIPTION.
function render(events: readonly Event[], stamp: number, tzAfter: boolean): string {
  const zone = 'BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n'
    + 'TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n';
  const body = events.map((e) => ['BEGIN:VEVENT', `DTSTAMP:20260101T${String(stamp % 240000).padStart(6, '0')}Z`,
    ...(e.uid === undefined ? [] : [`UID:${e.uid}`]), `DTSTART;VALUE=DATE:${day(e.start)}`,
    ...(e.rid === undefined ? [] : [`RECURRENCE-ID;VALUE=DATE:${day(e.rid)}`]),
    ...(e.sequence === undefined ? [] : [`SEQUENCE:${e.sequence}`]),
    `DTEND;VALUE=DATE:${day(e.start + 1 + (e.summary % 3))}`, `SUMMARY:Booked ${e.summary}`,
    `DESCRIPTION:${'x'.repeat(70)}\r\n ${e.summary}`,
    ...(e.alarm ? ['BEGIN:VALARM', 'ACTION:DISPLAY', 'TRIGGER:-PT1H', 'END:VALARM'] : []), 'END:VEVENT']
    .map((l) => `${l}\r\n`).join('')).join('');
  return `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n${tzAfter ? '' : zone}${body}${tzAfter ? zone : ''}END:VCALENDAR\r\n`;
}

function applyEdit(events: Event[], e: Edit, serial: number): Event[] {
  const at = (pick: number) => (events.length === 0 ? -1 : pick % events.length);
  const next = [...events];
  switch (e.kind) {
    case 'add':
      next.push({ uid: e.uidless ? undefined : `u${serial}@t`, start: e.start, summary: serial, alarm: e.alarm });
      break;
    case 'remove':
      if (at(e.pick) !== -1) next.splice(at(e.pick), 1);
      break;
    case 'change': {
      const i = at(e.pick);
      if (i !== -1) next[i] = { ...(next[i] as Event), summary: serial };
      break;
    }
    case 'rekey': {
      const i = at(e.pick);
      if (i !== -1 && next[i]?.uid !== undefined) next[i] = { ...(next[i] as Event), uid: `r${serial}@t` };
      break;
    }
    case 'move': {
      const i = at(e.from);
      if (i !== -1) next.splice(e.to % next.length, 0, ...next.splice(i, 1));
      break;
    }
    case 'reverse':
      next.reverse();
      break;
    case 'churn':
      break;
    case 'copy': {
      const i = at(e.pick);
      const picked = next[i];
      if (picked === undefined) break;
      if (e.as === 'duplicate') next.push({ ...picked, sequence: e.sequence });
      else if (e.as === 'override') next.push({ ...picked, rid: picked.start + 7, summary: serial });
      else next.push({ ...picked, uid: picked.uid === undefined ? undefined : `t${serial}@t` });
      break;
    }
  }
  return next;
}

// A component reused from the last read keeps the DTSTAMP line of the read that parsed it: an entity of
// several members changed by one of them carries the others' earlier stamps. DTSTAMP aside, texts are equal.
const stampless = (text: string) => text.replace(/\r\nDTSTAMP:\d{8}T\d{6}Z\r\n/g, '\r\nDTSTAMP:-\r\n');

const outcome = (r: SnapshotResult) => ({
  version: r.history.version,
  tag: r.history.tag,
  entities: [...r.history.entities].map(([id, e]) => [id, { ...e, text: stampless(e.text) }]),
  tombstones: [...r.history.tombstones],
  zones: [...r.history.zones],
  frame: r.history.frame,
  changes: [r.changed, r.added, r.modified, r.removed, r.rekeyed],
});

// What applyAnalysis decides, as it decided it when every id was decoded and looked up: the entities' ids
// in the new history's order, and the lists of changes. Vanished entities are inherited in history order.
function reference(history: FeedHistory, packed: ReturnType<typeof packCalendar>) {
  const read = Array.from({ length: packedCount(packed) }, (_, i) => unpackEntity(packed, i));
  const ids: string[] = [];
  const modified: string[] = [];
  const fresh = read.filter((e) => {
    const held = history.entities.get(e.id);
    if (!held) return true;
    ids.push(e.id);
    if (held.hash !== e.hash) modified.push(e.id);
    return false;
  });
  const vanished = new Map<string, string[]>();
  for (const [id, held] of history.entities) {
    if (!ids.includes(id)) vanished.set(held.content, [...vanished.get(held.content) ?? [], id]);
  }
  const added: string[] = [];
  let rekeyed = 0;
  for (const e of fresh) {
    const twin = vanished.get(e.content)?.pop();
    if (twin === undefined) added.push(e.id);
    else rekeyed += 1;
    ids.push(twin ?? e.id);
  }
  const removed = [...history.entities.keys()].filter((id) => !ids.includes(id));
  const changed = history.frame.hash !== packed.frame.hash || added.length + modified.length + removed.length > 0;
  return { ids: changed ? ids : [...history.entities.keys()], changes: [changed, added, modified, removed, rekeyed] };
}

// Reads that change events in place (the history's order kept: the copy path of applyAnalysis), now and
// then one that moves, adds or removes some.
const inPlaceEdit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('change' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'churn' as const }) },
  { weight: 1, arbitrary: edit },
);

for (const [name, edits] of [['whatever the edits', edit], ['changed in place', inPlaceEdit]] as const) {
  test(`an apply of a read analysed with the last read's blocks equals one analysed from scratch (${name})`, () => {
    fc.assert(fc.property(
      fc.array(fc.record({ start: fc.integer({ min: 0, max: 40 }), alarm: fc.boolean() }), { maxLength: 30 }),
      fc.array(fc.tuple(fc.array(edits, { minLength: 1, maxLength: 4 }), fc.boolean()), { minLength: 1, maxLength: 8 }),
      (initial, reads) => {
        let events: Event[] = initial.map((e, i) => ({ uid: `e${i}@t`, start: e.start, summary: i, alarm: e.alarm }));
        let serial = 1000;
        const first = Buffer.from(render(events, 0, false));
        let memo: ReusedPack['memo'] = packReusing(first, undefined).memo;
        let history: FeedHistory = applyAnalysis(undefined, packCalendar(first), 0).history;
        // Both sides share one lineage: the incremental side starts from the same history.
        for (const [step, [edits, tzAfter]] of reads.entries()) {
          for (const e of edits) events = applyEdit(events, e, serial++);
          const body = Buffer.from(render(events, step + 1, tzAfter));
          const now = (step + 1) * 60_000;
          const reused = packReusing(body, memo);
          const incremental = applyAnalysis(history, reused.packed, now);
          const scratch = applyAnalysis(history, packCalendar(body), now);
          assert.deepEqual(outcome(incremental), outcome(scratch));
          // A history whose order was handed on by a read in place applies as one whose map is read afresh.
          const control = applyAnalysis({ ...history, entities: new Map(history.entities) }, reused.packed, now);
          assert.deepEqual(outcome(control), outcome(incremental));
          const expected = reference(history, reused.packed);
          const decided = { ids: [...incremental.history.entities.keys()], changes: outcome(incremental).changes };
          assert.deepEqual(decided, expected);
          // And both are the read: each entity's hash is the read's, and `modified` the ids whose hash moved.
          const read = packCalendar(body);
          const hashes = new Map(Array.from({ length: packedCount(read) }, (_, i) => unpackEntity(read, i))
            .map((e) => [e.id, e.hash]));
          if (scratch.rekeyed === 0) {
            assert.deepEqual(new Map([...scratch.history.entities].map(([id, e]) => [id, e.hash])), hashes);
          }
          assert.deepEqual(scratch.modified, [...hashes].filter(([id, hash]) => {
            const held = history.entities.get(id);
            return held !== undefined && held.hash !== hash;
          }).map(([id]) => id));
          assert.equal(reused.packed.tag, packCalendar(body).tag);
          memo = reused.memo;
          history = scratch.history;
        }
      },
    ), { numRuns: 150 });
  });
}
