// Plain-text tables for the command line (`icalpush status`): columns as wide as their widest cell in terminal
// cells, numbers right-aligned, no colour (the output is as readable piped to a file as on a terminal).

/** A cell: a number is right-aligned when every filled cell of its column is one. */
export type Cell = string | number | undefined;

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
// East Asian wide and fullwidth blocks, and emoji: two terminal cells each (UAX #11, roughly).
const wide = /^(?:\p{Extended_Pictographic}|[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|[\u{20000}-\u{3fffd}])/u;
// Zero-width: combining marks and format characters inside a grapheme count nothing past its first cell.
const invisible = /^[\p{Mn}\p{Me}\p{Cf}]+$/u;

/** How many terminal cells `text` takes. */
export function stringWidth(text: string): number {
  let width = 0;
  for (const { segment } of segmenter.segment(text)) {
    if (invisible.test(segment)) continue;
    width += wide.test(segment) ? 2 : 1;
  }
  return width;
}

const show = (cell: Cell) => (cell === undefined ? '' : String(cell));

/** `header` and `rows` as lines, columns two spaces apart, a rule under the header; no trailing spaces. */
export function renderTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const columns = header.length;
  const widths = header.map((title, i) =>
    Math.max(stringWidth(title), ...rows.map((row) => stringWidth(show(row[i])))));
  const right = header.map((_, i) => {
    const filled = rows.map((row) => row[i]).filter((cell) => cell !== undefined && cell !== '');
    return filled.length > 0 && filled.every((cell) => typeof cell === 'number');
  });
  const line = (cells: readonly string[]) => cells.map((text, i) => {
    const pad = ' '.repeat(Math.max(0, (widths[i] ?? 0) - stringWidth(text)));
    return right[i] ? pad + text : i === columns - 1 ? text : text + pad;
  }).join('  ').trimEnd();
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((row) => line(header.map((_, i) => show(row[i])))),
  ].join('\n');
}
