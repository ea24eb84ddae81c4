// Turns an upstream feed body into text without losing a byte's meaning: strips a UTF-8 BOM and
// falls back to Latin-1 when the body is not valid UTF-8 (RFC 5545 §3.1.4 says UTF-8; real exports disagree).

import { isAscii } from 'node:buffer';

/** The decoded text of a feed body, the encoding that decoded it and whether a BOM was removed. */
export type DecodedFeed = { text: string; encoding: 'utf-8' | 'latin1'; hadBom: boolean };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a feed body: UTF-8 when valid, otherwise Latin-1 (the re-encoded Google export quirk). */
export function decodeFeed(body: Buffer): DecodedFeed {
  const hadBom = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
  const bytes = hadBom ? body.subarray(3) : body;
  // ASCII, as most feeds are, reads the same in both: the Latin-1 decode skips UTF-8's validation.
  if (isAscii(bytes)) return { text: bytes.toString('latin1'), encoding: 'utf-8', hadBom };
  try {
    return { text: utf8.decode(bytes), encoding: 'utf-8', hadBom };
  } catch {
    // ISO-8859-1 maps every byte to one code point, so nothing is dropped. (TextDecoder's
    // 'latin1' is windows-1252 per WHATWG and would remap 0x80–0x9F.)
    return { text: bytes.toString('latin1'), encoding: 'latin1', hadBom };
  }
}
