import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyAnalysis, capTombstones, changesSince, type FeedHistory, isTokenUsable, pruneTombstones, versionOfTag,
} from '../../src/feeds/history.ts';
import { packCalendar } from '../../src/work/feed-tasks.ts';

const t0 = Date.UTC(2025, 2, 1, 12, 0, 0);
const day = 24 * 60 * 60 * 1000;
const calendar = (...components: string[]) =>
  `BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n${components.join('\n')}\nEND:VCALENDAR\n`;
const applySnapshot = (history: FeedHistory | undefined, text: string, now: number) =>
  applyAnalysis(history, packCalendar(Buffer.from(text)), now);
// Each UID gets its own default summary: same-content events under new UIDs are a re-keying (below).
const vevent = (uid: string, summary = `Booked ${uid}`, dtstamp = '20250301T000000Z') =>
  `BEGIN:VEVENT\nUID:${uid}\nDTSTAMP:${dtstamp}\nDTSTART;VALUE=DATE:20250310\nSUMMARY:${summary}\nEND:VEVENT`;
const first = (...components: string[]) => applySnapshot(undefined, calendar(...components), t0).history;
const uidOf = (text: string) => /\r\nUID:([^\r]*)/.exec(text)?.[1];
const uids = (texts: string[]) => texts.map(uidOf);

test('applySnapshot: the first read is version 1 with every entity added', () => {
  const result = applySnapshot(undefined, calendar(vevent('a'), vevent('b')), t0);
  assert.equal(result.changed, true);
  assert.equal(result.history.version, 1);
  assert.deepEqual(result.added, ['a', 'b']);
  assert.deepEqual([...result.history.entities.values()].map((e) => e.version), [1, 1]);
});

test('applySnapshot: a first read of an empty calendar is still version 1', () => {
  const result = applySnapshot(undefined, calendar(), t0);
  assert.equal(result.changed, true);
  assert.equal(result.history.version, 1);
});

test('applySnapshot: DTSTAMP-only churn is not a change', () => {
  const history = first(vevent('a'));
  const result = applySnapshot(history, calendar(vevent('a', 'Booked a', '20250302T101010Z')), t0 + 1000);
  assert.equal(result.changed, false);
  assert.equal(result.history.version, 1);
  assert.deepEqual([result.added, result.modified, result.removed], [[], [], []]);
});

test('applySnapshot: a modification bumps the version by one and stamps the entity', () => {
  const history = first(vevent('a'), vevent('b'));
  const result = applySnapshot(history, calendar(vevent('a', 'Blocked'), vevent('b')), t0);
  assert.equal(result.history.version, 2);
  assert.deepEqual(result.modified, ['a']);
  assert.equal(result.history.entities.get('a')!.version, 2);
  assert.equal(result.history.entities.get('b')!.version, 1);
});

test('applySnapshot: an addition bumps the version by one', () => {
  const result = applySnapshot(first(vevent('a')), calendar(vevent('a'), vevent('c')), t0);
  assert.equal(result.history.version, 2);
  assert.deepEqual(result.added, ['c']);
});

test('applySnapshot: several changes in one read are still one version', () => {
  const result = applySnapshot(first(vevent('a'), vevent('b')), calendar(vevent('a', 'x'), vevent('c')), t0);
  assert.equal(result.history.version, 2);
  assert.deepEqual([result.added, result.modified, result.removed], [['c'], ['a'], ['b']]);
});

test('applySnapshot: a removal bumps the version and leaves a tombstone at that version', () => {
  const result = applySnapshot(first(vevent('a'), vevent('b')), calendar(vevent('a')), t0 + day);
  assert.equal(result.history.version, 2);
  assert.deepEqual(result.removed, ['b']);
  assert.equal(result.history.entities.get('b'), undefined);
  assert.equal(result.history.tombstones.get('b')!.version, 2);
  assert.equal(result.history.tombstones.get('b')!.removedAt, t0 + day);
});

test('applySnapshot: a tombstone skeleton has UID, DTSTAMP of the read, last DTSTART and STATUS:DELETED', () => {
  const result = applySnapshot(first(vevent('a'), vevent('b')), calendar(vevent('a')), Date.UTC(2025, 2, 2, 8, 5, 9));
  assert.equal(result.history.tombstones.get('b')!.text,
    'BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20250302T080509Z\r\nDTSTART;VALUE=DATE:20250310\r\nSTATUS:DELETED\r\nEND:VEVENT\r\n');
});

test('applySnapshot: an entity coming back drops its tombstone and is added at a new version', () => {
  const removed = applySnapshot(first(vevent('a'), vevent('b')), calendar(vevent('a')), t0).history;
  const back = applySnapshot(removed, calendar(vevent('a'), vevent('b')), t0);
  assert.equal(back.history.version, 3);
  assert.deepEqual(back.added, ['b']);
  assert.equal(back.history.tombstones.get('b'), undefined);
  assert.equal(back.history.entities.get('b')!.version, 3);
});

test('applySnapshot: a frame change bumps the version', () => {
  const history = first(vevent('a'));
  const text = `BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nX-WR-CALNAME:Villa\n${vevent('a')}\nEND:VCALENDAR\n`;
  const result = applySnapshot(history, text, t0);
  assert.equal(result.changed, true);
  assert.equal(result.history.version, 2);
  assert.equal(result.history.frame.properties, 'VERSION:2.0\r\nPRODID:-//test//EN\r\nX-WR-CALNAME:Villa\r\n');
});

test('applySnapshot: does not change the history it is given', () => {
  const history = first(vevent('a'), vevent('b'));
  const copy = structuredClone(history);
  applySnapshot(history, calendar(vevent('a', 'x'), vevent('c')), t0);
  assert.deepEqual(history, copy);
});

test('capTombstones: keeps the newest tombstones and raises the floor past the dropped ones', () => {
  let history = first(vevent('a'), vevent('b'), vevent('c'), vevent('d'));
  history = applySnapshot(history, calendar(vevent('b'), vevent('c'), vevent('d')), t0).history; // v2: a removed
  history = applySnapshot(history, calendar(vevent('c'), vevent('d')), t0).history; // v3: b removed
  history = applySnapshot(history, calendar(vevent('d')), t0).history; // v4: c removed
  const capped = capTombstones(history, 2);
  assert.deepEqual([...capped.tombstones.keys()].sort(), ['b', 'c']);
  assert.equal(capped.floor, 2);
  assert.equal(isTokenUsable(capped, { lineage: capped.lineage, version: 1 }), false);
  assert.equal(isTokenUsable(capped, { lineage: capped.lineage, version: 2 }), true);
  assert.equal(capTombstones(capped, 2), capped);
});

test('pruneTombstones: drops tombstones past retention and raises the floor to their version', () => {
  let history = first(vevent('a'), vevent('b'), vevent('c'));
  history = applySnapshot(history, calendar(vevent('a'), vevent('c')), t0).history; // v2: b removed
  history = applySnapshot(history, calendar(vevent('a')), t0 + 20 * day).history; // v3: c removed
  const pruned = pruneTombstones(history, t0 + 31 * day, 30 * day);
  assert.deepEqual([...pruned.tombstones.keys()], ['c']);
  assert.equal(pruned.floor, 2);
  assert.equal(isTokenUsable(pruned, { lineage: pruned.lineage, version: 1 }), false);
  assert.equal(isTokenUsable(pruned, { lineage: pruned.lineage, version: 2 }), true);
});

test('pruneTombstones: returns the same history when nothing is past retention', () => {
  const history = applySnapshot(first(vevent('a'), vevent('b')), calendar(vevent('a')), t0).history;
  assert.equal(pruneTombstones(history, t0 + day, 30 * day), history);
});

test('isTokenUsable: refuses a token of a history that was lost and rebuilt', () => {
  const lost = first(vevent('a'));
  const rebuilt = first(vevent('a'));
  assert.notEqual(rebuilt.lineage, lost.lineage);
  assert.equal(isTokenUsable(rebuilt, { lineage: lost.lineage, version: 1 }), false);
});

test('isTokenUsable: refuses a version the history has not reached', () => {
  const history = first(vevent('a'));
  assert.equal(isTokenUsable(history, { lineage: history.lineage, version: 1 }), true);
  assert.equal(isTokenUsable(history, { lineage: history.lineage, version: 2 }), false);
  assert.equal(isTokenUsable(history, { lineage: history.lineage, version: -1 }), false);
});

test('changesSince: nothing after the current version', () => {
  const history = first(vevent('a'));
  const changes = changesSince(history, { version: 1 });
  assert.deepEqual(changes, { entities: [], tombstones: [], timezones: [], next: { version: 1 }, truncated: false });
});

test('changesSince: returns changed entities and tombstones, not the unchanged ones', () => {
  let history = first(vevent('a'), vevent('b'), vevent('c'));
  history = applySnapshot(history, calendar(vevent('a', 'x'), vevent('c'), vevent('d')), t0).history;
  const changes = changesSince(history, { version: 1 });
  assert.deepEqual(uids(changes.entities), ['a', 'd']);
  assert.deepEqual(uids(changes.tombstones), ['b']);
  assert.deepEqual(changes.next, { version: 2 });
  assert.equal(changes.truncated, false);
});

test('changesSince: paging resumes exactly after the last id sent and delivers each change once', () => {
  let history = first(vevent('a'));
  history = applySnapshot(history, calendar(vevent('a'), vevent('b'), vevent('c')), t0).history; // v2
  history = applySnapshot(history, calendar(vevent('b'), vevent('c'), vevent('d')), t0).history; // v3: a removed
  const seen: string[] = [];
  let since: { version: number; after?: string } = { version: 1 };
  for (let page = 0; page < 10; page += 1) {
    const changes = changesSince(history, since, 2);
    seen.push(...uids(changes.entities) as string[], ...changes.tombstones.map((c) => `-${uidOf(c)}`));
    since = changes.next;
    if (!changes.truncated) break;
  }
  assert.deepEqual(seen, ['b', 'c', 'd', '-a']); // page 2 holds (3, a) and (3, d)
  assert.deepEqual(since, { version: 3 });
});

test('changesSince: a truncated answer points just after its last change', () => {
  let history = first(vevent('a'));
  history = applySnapshot(history, calendar(vevent('a'), vevent('b'), vevent('c')), t0).history;
  const changes = changesSince(history, { version: 1 }, 1);
  assert.equal(changes.truncated, true);
  assert.deepEqual(changes.next, { version: 1, after: 'b' });
});

test('changesSince: a change made between pages is delivered after the position, not skipped', () => {
  let history = first(vevent('a'));
  history = applySnapshot(history, calendar(vevent('a'), vevent('b'), vevent('c')), t0).history;
  const page = changesSince(history, { version: 1 }, 1);
  history = applySnapshot(history, calendar(vevent('a'), vevent('b', 'x'), vevent('c', 'y')), t0).history;
  const rest = changesSince(history, page.next);
  assert.deepEqual(uids(rest.entities), ['b', 'c']);
  assert.deepEqual(rest.next, { version: 3 });
});

test('applySnapshot: an exporter minting new UIDs for the same events is matched by content', () => {
  const history = first(vevent('run1-a', 'A'), vevent('run1-b', 'B'));
  const result = applySnapshot(history, calendar(vevent('run2-a', 'A'), vevent('run2-b', 'B')), t0 + 1000);
  assert.equal(result.changed, false);
  assert.equal(result.rekeyed, 2);
  assert.deepEqual([...result.history.entities.keys()].sort(), ['run1-a', 'run1-b']);
  assert.equal(result.history.tag, history.tag);
  // The next run's UIDs match the kept entities by content again, and a real change still counts.
  const next = applySnapshot(result.history, calendar(vevent('run3-a', 'A'), vevent('run3-b', 'B2')), t0 + 2000);
  assert.equal(next.changed, true);
  assert.equal(next.rekeyed, 1);
  assert.deepEqual([next.added, next.removed], [['run3-b'], ['run1-b']]);
  assert.deepEqual([...next.history.entities.keys()].sort(), ['run1-a', 'run3-b']);
});

test('applySnapshot: twins are matched one to one, so a duplicated event is still an addition', () => {
  const history = first(vevent('x1', 'Same'));
  const result = applySnapshot(history, calendar(vevent('x2', 'Same'), vevent('x3', 'Same')), t0 + 1000);
  assert.equal(result.changed, true);
  assert.equal(result.rekeyed, 1);
  assert.equal(result.added.length, 1);
  assert.equal(result.history.entities.size, 2);
});

test('applySnapshot: the content tag follows content, not versions', () => {
  const a = first(vevent('a'));
  const b = applySnapshot(a, calendar(vevent('a', 'changed')), t0 + 1000).history;
  const back = applySnapshot(b, calendar(vevent('a')), t0 + 2000).history;
  assert.notEqual(b.tag, a.tag);
  assert.equal(back.tag, a.tag);
  assert.equal(back.version, 3);
  assert.deepEqual(back.tags.map(([, v]) => v), [2, 3]);
  assert.equal(versionOfTag(back, a.tag), 3);
  assert.equal(versionOfTag(back, b.tag), 2);
  assert.equal(versionOfTag(back, 'unknown'), undefined);
});
