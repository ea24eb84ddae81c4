// What the console's pages are made of: escaping every value, and plots that say what they show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHTML } from 'linkedom';
import { escapeHtml, html, raw } from '../../src/console/html.ts';
import { formatTime } from '../../src/console/pages.ts';
import { linePlot, niceMax } from '../../src/console/svg-plot.ts';

test('html escapes every interpolated value, lists included; markup passes only as html or raw', () => {
  const id = '<img src=x onerror=alert(1)>"\'&';
  assert.equal(String(html`<td title="${id}">${id}</td>`),
    '<td title="&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;">&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;</td>');
  assert.equal(String(html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`), '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>');
  assert.equal(String(html`${undefined}${null}${false}${0}`), '0');
  assert.equal(String(raw('<br>')), '<br>');
  assert.equal(escapeHtml('a&b'), 'a&amp;b');
});

test('a plot is an image with a title and a description of each line, gaps left open', () => {
  const svg = String(linePlot({ id: 'p', title: 'Sent', unit: '/min', endMs: Date.UTC(2026, 0, 1, 12),
    lines: [{ name: 'sent', className: 's-1', values: [1, 4, null, 2] }, { name: 'failed', className: 's-2', values: [null, null, null, null] }] }));
  const { document } = parseHTML(`<html><body>${svg}</body></html>`);
  const el = document.querySelector('svg');
  assert.equal(el?.getAttribute('role'), 'img');
  assert.equal(el?.getAttribute('aria-labelledby'), 'p-title p-desc');
  assert.match(document.getElementById('p-desc')?.textContent ?? '', /sent: max 4\/min, mean 2.3\/min; failed: no data/);
  const path = document.querySelector('path.s-1')?.getAttribute('d') ?? '';
  // Two runs: the missing minute breaks the line.
  assert.equal(path.match(/M/g)?.length, 2);
  // A value alone between gaps (the last one) would draw nothing as a path: it is a dot.
  assert.equal(document.querySelectorAll('circle.s-1').length, 1);
  assert.equal(document.querySelector('path.s-2')?.getAttribute('d'), '');
  assert.deepEqual([...document.querySelectorAll('.legend li')].map((li) => li.textContent), ['sent', 'failed']);
});

test('the value axis ends at a round number', () => {
  assert.deepEqual([0, 0.3, 1, 7, 12, 99, 101].map(niceMax), [1, 0.5, 1, 10, 20, 100, 200]);
});

test('times show in the listing\'s zone: 23:30Z is already tomorrow in Rome and Tokyo, not in New York', () => {
  const at = '2026-12-01T23:30:00.000Z';
  assert.equal(formatTime(at, 'Europe/Rome'), '2026-12-02 00:30:00 CET');
  assert.match(formatTime(at, 'Asia/Tokyo'), /^2026-12-02 08:30:00 /);
  assert.match(formatTime(at, 'America/New_York'), /^2026-12-01 18:30:00 /);
  assert.equal(formatTime(at), '2026-12-01 23:30:00 UTC');
  assert.equal(formatTime(undefined), '—');
  // Summer time: the offset follows the date, not the zone's winter name.
  assert.equal(formatTime('2026-07-01T22:30:00.000Z', 'Europe/Rome'), '2026-07-02 00:30:00 CEST');
});
