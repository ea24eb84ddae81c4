// FNV-1a over a string's code units: a stable, cheap spread (of feeds over workers, of ids over pages).

/** The 32-bit FNV-1a hash of `text`, unsigned. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
