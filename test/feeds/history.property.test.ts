// Property: a client that starts from the first full state and applies every enhanced GET delta,
// paging with random limits while the feed keeps changing, ends with exactly the latest entity set
// and never receives the same (id, version) twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applyAnalysis, calendarText, changesSince, currentTexts, type FeedHistory, isTokenUsable } from '../../src/feeds/history.ts';
import { decodeToken, encodeToken } from '../../src/feeds/sync-token.ts';
import { packCalendar, packedCount, unpackEntity } from '../../src/work/feed-tasks.ts';
import { assertValidICalendar } from '../helpers/valid-icalendar.ts';

const applySnapshot = (history: FeedHistory | undefined, text: string, now: number) =>
  applyAnalysis(history, packCalendar(Buffer.from(text)), now);
const entitiesOf = (text: string) => {
  const packed = packCalendar(Buffer.from(text));
  return Array.from({ length: packedCount(packed) }, (_, i) => unpackEntity(packed, i));
};
const propertyOf = (text: string, name: string) => new RegExp(`\\r\\n${name}:([^\\r]*)`).exec(text)?.[1];

type Operation =
  | { kind: 'add'; summary: number }
  | { kind: 'modify'; pick: number; summary: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'rekey'; pick: number }
  | { kind: 'restore'; pick: number }
  | { kind: 'churn' }
  | { kind: 'sync'; limit: number | undefined };

const summary = fc.integer({ min: 0, max: 2 });
const pick = fc.nat();
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), summary }),
  fc.record({ kind: fc.constant('modify' as const), pick, summary }),
  fc.record({ kind: fc.constant('remove' as const), pick }),
  fc.record({ kind: fc.constant('rekey' as const), pick }),
  fc.record({ kind: fc.constant('restore' as const), pick }),
  fc.constant({ kind: 'churn' as const }),
  fc.record({ kind: fc.constant('sync' as const), limit: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }) }),
);

const feed = '/ical/listing-7.ics?s=secret';
const day = 24 * 60 * 60 * 1000;

/** The upstream: a small calendar whose events may carry a RECURRENCE-ID override (one entity). */
class Upstream {
  events = new Map<string, number>();
  removed: string[] = [];
  stamp = 0;
  next = 0;

  add(value: number): void {
    this.events.set(`e${this.next}`, value);
    this.next += 1;
  }

  pick(n: number): string | undefined {
    const uids = [...this.events.keys()];
    return uids.length === 0 ? undefined : uids[n % uids.length];
  }

  text(): string {
    const stamp = `202503${String(1 + (this.stamp % 28)).padStart(2, '0')}T000000Z`;
    const events = [...this.events].map(([uid, value], i) => {
      const master = `BEGIN:VEVENT\nUID:${uid}\nDTSTAMP:${stamp}\nDTSTART:2025040${1 + (i % 9)}T100000Z\nSUMMARY:s${value}\nEND:VEVENT`;
      // Odd values add an override, so a change to it changes the whole entity (draft -13).
      return value % 2 === 0 ? master
        : `${master}\nBEGIN:VEVENT\nUID:${uid}\nDTSTAMP:${stamp}\nRECURRENCE-ID:20250408T100000Z\nSUMMARY:moved\nEND:VEVENT`;
    });
    return `BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n${events.join('\n')}\nEND:VCALENDAR\n`;
  }
}

/** The subscriber: its copy of the feed (id → hash) and its Sync-Token. */
type Client = { copy: Map<string, string>; token: string; received: Set<string> };

function hashOf(text: string): { id: string; hash: string } {
  const [entity] = entitiesOf(`BEGIN:VCALENDAR\r\n${text}END:VCALENDAR\r\n`);
  assert.ok(entity);
  return { id: entity.id, hash: entity.hash };
}

// One enhanced GET with a token: decode, check, apply the delta, keep the new token.
function syncOnce(client: Client, history: FeedHistory, limit: number | undefined): boolean {
  const position = decodeToken(client.token, feed);
  assert.ok(position.ok);
  assert.ok(isTokenUsable(history, position));
  const changes = changesSince(history, {
    version: position.version,
    ...(position.after === undefined ? {} : { after: position.after }),
    ...(position.initial ? { initial: true } : {}),
  }, limit);
  for (const text of changes.entities) {
    const { id, hash } = hashOf(text);
    const key = `${id}@${history.entities.get(id)?.version}`;
    assert.ok(!client.received.has(key), `received ${key} twice`);
    client.received.add(key);
    client.copy.set(id, hash);
  }
  for (const skeleton of changes.tombstones) {
    assert.equal(propertyOf(skeleton, 'STATUS'), 'DELETED');
    const id = propertyOf(skeleton, 'UID') ?? '';
    const key = `${id}@${history.tombstones.get(id)?.version}`;
    assert.ok(!client.received.has(key), `received ${key} twice`);
    client.received.add(key);
    client.copy.delete(id);
  }
  if (limit !== undefined) assert.ok(changes.entities.length + changes.tombstones.length <= limit);
  assertValidICalendar(calendarText(history, [...changes.entities, ...changes.tombstones], changes.timezones));
  client.token = encodeToken({ feed, lineage: history.lineage, ...changes.next });
  return changes.truncated;
}

test('a client applying every delta ends with the latest entity set, each change once', () => {
  fc.assert(fc.property(
    fc.array(summary, { maxLength: 4 }),
    fc.array(operation, { maxLength: 30 }),
    fc.integer({ min: 1, max: 4 }),
    (initial, operations, finalLimit) => {
      const upstream = new Upstream();
      for (const value of initial) upstream.add(value);
      let now = Date.UTC(2025, 2, 1);
      let history = applySnapshot(undefined, upstream.text(), now).history;

      // The first answer: every live entity and a token at the current version, or (odd limits) a
      // paged first sync whose later pages interleave with the changes below.
      const client: Client = { copy: new Map(), token: '', received: new Set() };
      if (finalLimit % 2 === 0) {
        client.token = encodeToken({ feed, lineage: history.lineage, version: history.version });
        for (const text of currentTexts(history)) {
          const { id, hash } = hashOf(text);
          client.copy.set(id, hash);
        }
      } else {
        client.token = encodeToken({ feed, lineage: history.lineage, version: history.version, initial: true });
        syncOnce(client, history, finalLimit);
      }

      for (const op of operations) {
        if (op.kind === 'sync') {
          syncOnce(client, history, op.limit);
          continue;
        }
        const uid = 'pick' in op ? upstream.pick(op.pick) : undefined;
        if (op.kind === 'add') upstream.add(op.summary);
        else if (op.kind === 'modify' && uid) upstream.events.set(uid, op.summary);
        else if (op.kind === 'remove' && uid) {
          upstream.events.delete(uid);
          upstream.removed.push(uid);
        } else if (op.kind === 'rekey' && uid) {
          // Same event under a new UID: matched by content, so it keeps its old identity.
          upstream.add(upstream.events.get(uid) ?? 0);
          upstream.events.delete(uid);
        } else if (op.kind === 'restore' && upstream.removed.length > 0) {
          const back = upstream.removed[op.pick % upstream.removed.length] as string;
          if (!upstream.events.has(back)) upstream.events.set(back, op.pick % 3);
        } else if (op.kind === 'churn') upstream.stamp += 1;
        now += day;
        const before = history.version;
        const result = applySnapshot(history, upstream.text(), now);
        assert.equal(result.history.version, before + (result.changed ? 1 : 0));
        if (op.kind === 'churn') assert.equal(result.changed, false);
        history = result.history;
      }

      for (let pages = 0; syncOnce(client, history, finalLimit); pages += 1) assert.ok(pages < 200);
      const latest = new Map([...history.entities].map(([id, e]) => [id, e.hash]));
      assert.deepEqual(new Map([...client.copy].sort()), new Map([...latest].sort()));
      // The snapshot holds the upstream's events exactly; only re-keyed ones keep their earlier UID.
      const stored = [...history.entities.values()].map((e) => e.content).sort();
      assert.deepEqual(stored, entitiesOf(upstream.text()).map((e) => e.content).sort());
    },
  ), { numRuns: 300 });
});
