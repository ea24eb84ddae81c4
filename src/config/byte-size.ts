// Byte sizes in the config: `512KiB`, `20MiB`, `1GiB`, or a plain number of bytes.

/** What a byte size string looks like. */
export const byteSizePattern = /^[0-9]+(B|KiB|MiB|GiB)$/;

const unitBytes: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Bytes in a size that matches byteSizePattern, or the number itself; NaN for anything else. */
export function parseByteSize(value: string | number): number {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : Number.NaN;
  const match = /^([0-9]+)(B|KiB|MiB|GiB)$/.exec(value);
  if (!match) return Number.NaN;
  return Number(match[1]) * (unitBytes[match[2] ?? ''] ?? Number.NaN);
}
