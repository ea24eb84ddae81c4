// Durations in the config: `500ms`, `30s`, `5m`, `1h`, `7d`, or 0.

/** What a duration string looks like. */
export const durationPattern = /^(0|[0-9]+(ms|s|m|h|d))$/;

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a duration that matches durationPattern (or 0); NaN for anything else. */
export function parseDuration(value: string | number): number {
  if (value === 0 || value === '0') return 0;
  if (typeof value !== 'string') return Number.NaN;
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(value);
  if (!match) return Number.NaN;
  return Number(match[1]) * (unitMs[match[2] ?? ''] ?? Number.NaN);
}
