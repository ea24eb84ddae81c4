// Plots for the operator console: inline SVG drawn on the server from a minute series, so a page needs
// no script, no library and no request to anywhere else. Each plot is an image with a title and a text
// description (what a screen reader says), lines coloured by CSS classes (light and dark schemes), the
// time axis in hours before now and the value axis from 0 to a round maximum.
import { html, type Html } from './html.ts';

/** One line of a plot: a name for the legend, a CSS class for its colour, one value per minute (null: none). */
export type PlotLine = { name: string; className: string; values: readonly (number | null)[]; dashed?: boolean };

/** What a plot shows. */
export type PlotOptions = {
  /** The plot's id (unique on the page): its title's and description's ids derive from it. */
  id: string;
  title: string;
  /** The value's unit, on the axis and in the description ("/min", "s"). */
  unit: string;
  lines: readonly PlotLine[];
  /** When the last value's minute ends (ms): the right edge of the time axis. */
  endMs: number;
  /** Minutes per value (1 by default). */
  stepMinutes?: number;
};

const width = 720;
const height = 180;
const left = 48;
const right = 12;
const top = 14;
const bottom = 26;

/** A round axis maximum at or above `max` (1, 2 or 5 times a power of ten). */
export function niceMax(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function formatValue(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 100) return String(Math.round(value));
  if (Math.abs(value) >= 1) return String(Math.round(value * 10) / 10);
  return String(Math.round(value * 1000) / 1000);
}

// The points of one line, broken where values are missing (a path of move-to and line-to commands); a value
// alone between gaps is a dot (a run of one point draws nothing).
function pathOf(values: readonly (number | null)[], yMax: number): { d: string; dots: [number, number][] } {
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const n = values.length;
  const x = (i: number) => left + (n <= 1 ? plotWidth : (i * plotWidth) / (n - 1));
  const y = (v: number) => top + plotHeight - (Math.min(v, yMax) / yMax) * plotHeight;
  const has = (i: number) => {
    const v = values[i];
    return v !== null && v !== undefined && Number.isFinite(v);
  };
  let d = '';
  const dots: [number, number][] = [];
  for (let i = 0; i < n; i += 1) {
    if (!has(i)) continue;
    const v = values[i] as number;
    const drawing = i > 0 && has(i - 1);
    if (!drawing && !has(i + 1)) dots.push([x(i), y(v)]);
    d += `${drawing ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)}`;
  }
  return { d, dots };
}

/** The plot as an inline SVG figure with its legend. */
export function linePlot(options: PlotOptions): Html {
  const { id, title, unit, lines } = options;
  let max = 0;
  const summaries: string[] = [];
  for (const line of lines) {
    let lineMax = 0;
    let total = 0;
    let counted = 0;
    for (const v of line.values) {
      if (v === null || !Number.isFinite(v)) continue;
      lineMax = Math.max(lineMax, v);
      total += v;
      counted += 1;
    }
    max = Math.max(max, lineMax);
    summaries.push(counted === 0 ? `${line.name}: no data`
      : `${line.name}: max ${formatValue(lineMax)}${unit}, mean ${formatValue(total / counted)}${unit}`);
  }
  const yMax = niceMax(max);
  const minutes = (lines[0]?.values.length ?? 0) * (options.stepMinutes ?? 1);
  const hours = minutes / 60;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  // Time ticks: every 6 hours over a day, every hour over a few, labelled in hours before now.
  const tickEvery = hours > 6 ? 6 : 1;
  const ticks: Html[] = [];
  for (let h = 0; h <= hours; h += tickEvery) {
    const x = left + plotWidth - (h / (hours || 1)) * plotWidth;
    ticks.push(html`<line class="grid" x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotHeight}"/>
<text class="tick" x="${x.toFixed(1)}" y="${height - 8}" text-anchor="middle">${h === 0 ? 'now' : `−${h} h`}</text>`);
  }
  const yTicks = [0, yMax / 2, yMax].map((v) => {
    const y = top + plotHeight - (v / yMax) * plotHeight;
    return html`<line class="grid" x1="${left}" y1="${y.toFixed(1)}" x2="${width - right}" y2="${y.toFixed(1)}"/>
<text class="tick" x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${formatValue(v)}</text>`;
  });
  const paths = lines.map((line) => {
    const { d, dots } = pathOf(line.values, yMax);
    return html`<path class="line ${line.className}${line.dashed ? ' dashed' : ''}" d="${d}"/>${dots.map(([cx, cy]) =>
      html`<circle class="dot ${line.className}" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3"/>`)}`;
  });
  const legend = lines.map((line) => html`<li><span class="swatch ${line.className}${line.dashed ? ' dashed' : ''}"></span>${line.name}</li>`);
  const ended = new Date(options.endMs).toISOString().slice(0, 16).replace('T', ' ');
  return html`<figure class="plot">
<svg viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-title ${id}-desc" preserveAspectRatio="none">
<title id="${id}-title">${title} (${unit}), last ${formatValue(hours)} h to ${ended} UTC</title>
<desc id="${id}-desc">${summaries.join('; ')}</desc>
${yTicks}${ticks}${paths}
</svg>
<figcaption><strong>${title}</strong> <span class="unit">(${unit.replace(/^\//, 'per ')})</span><ul class="legend">${legend}</ul></figcaption>
</figure>`;
}
