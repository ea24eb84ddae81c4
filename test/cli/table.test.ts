// The command line's plain-text tables (table.ts): widths in terminal cells, numbers right-aligned.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderTable, stringWidth } from '../../src/cli/table.ts';

test('stringWidth counts wide characters and emoji as two cells, combining marks as none', () => {
  assert.equal(stringWidth('rome'), 4);
  assert.equal(stringWidth('東京'), 4);
  assert.equal(stringWidth('🏠'), 2);
  assert.equal(stringWidth('cafe\u0301'), 4);
});

test('renderTable pads columns to their widest cell and right-aligns a column of numbers', () => {
  assert.equal(renderTable(['listing', 'entities', 'note'], [['東京', 12, 'held'], ['rome', 3, undefined]]), [
    'listing  entities  note',
    '-------  --------  ----',
    '東京           12  held',
    'rome            3',
  ].join('\n'));
});
