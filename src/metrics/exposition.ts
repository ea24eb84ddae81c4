// Renders a registry in the Prometheus text exposition format 0.0.4: HELP and TYPE lines, then
// one sample per line, histograms as cumulative `_bucket{le=…}` plus `_sum` and `_count`.
import type { MetricFamily, Registry } from './registry.ts';

/** The Content-Type of the text format this module writes. */
export const expositionContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** HELP text escapes backslash and newline (format 0.0.4). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values also escape the double quote that delimits them (format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Go's float spelling, which Prometheus parses: `+Inf`, `-Inf`, `NaN`, else decimal. */
export function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelSet(names: readonly string[], values: readonly string[], extra?: string): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra !== undefined) pairs.push(extra);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function renderFamily(family: MetricFamily, lines: string[]): void {
  const { name, labelNames } = family;
  lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
  if (family.type !== 'histogram') {
    for (const { labelValues, value } of family.series) {
      lines.push(`${name}${labelSet(labelNames, labelValues)} ${formatValue(value)}`);
    }
    return;
  }
  for (const { labelValues, bucketCounts, sum, count } of family.series) {
    family.buckets.forEach((bound, i) => {
      const le = `le="${formatValue(bound)}"`;
      lines.push(`${name}_bucket${labelSet(labelNames, labelValues, le)} ${bucketCounts[i] ?? 0}`);
    });
    lines.push(`${name}_bucket${labelSet(labelNames, labelValues, 'le="+Inf"')} ${count}`);
    lines.push(`${name}_sum${labelSet(labelNames, labelValues)} ${formatValue(sum)}`);
    lines.push(`${name}_count${labelSet(labelNames, labelValues)} ${count}`);
  }
}

/** The whole registry as exposition text, ending in a newline. */
export function renderExposition(registry: Registry): string {
  const lines: string[] = [];
  for (const family of registry.collect()) renderFamily(family, lines);
  return `${lines.join('\n')}\n`;
}
