// Read rates in the config (`push.watch.maxRate`): `20/s`, `300/m`, `3600/h`, or a plain number of reads
// per second, read as reads per second.

/** What a rate string looks like: a positive decimal, `/`, a unit (s, m, h). */
export const readRatePattern = /^([0-9]+(\.[0-9]+)?)\/(s|m|h)$/;

const perUnitSeconds: Record<string, number> = { s: 1, m: 60, h: 3_600 };

/** Reads per second of a rate (a string matching readRatePattern, or a number per second); NaN for anything
 * else, and for a rate of 0 (a budget of nothing is no watch: `push.watch: 0` says that). */
export function parseReadRate(value: string | number): number {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : Number.NaN;
  const match = readRatePattern.exec(value);
  if (!match) return Number.NaN;
  const rate = Number(match[1]) / (perUnitSeconds[match[3] ?? ''] ?? Number.NaN);
  return rate > 0 ? rate : Number.NaN;
}
