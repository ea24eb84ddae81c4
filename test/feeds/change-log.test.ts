// The write-ahead journal of feed changes: what is recorded stays until done, across a reopen of the
// store, and comes back oldest first.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createChangeLog } from '../../src/feeds/change-log.ts';
import { openStore } from '../../src/store/open-store.ts';

const feed = { key: '/c/x.ics', target: '/c/x.ics', listing: 'x' };

test('recorded changes survive a reopen, oldest first, until each is done', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'icalpush.db');
  const store = await openStore(path);
  const log = createChangeLog(store);
  const later = await log.record({ feed, version: 3, tag: 't3', at: 2_000 });
  const earlier = await log.record({ feed, version: 2, tag: 't2', at: 1_000 });
  await store.close();

  const reopened = await openStore(path);
  t.after(() => reopened.close());
  const again = createChangeLog(reopened);
  assert.deepEqual((await again.pending()).map((c) => c.id), [earlier.id, later.id]);
  await again.done(earlier.id);
  assert.deepEqual((await again.pending()).map((c) => c.version), [3]);
});
