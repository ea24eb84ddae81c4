// A connection map as CSV (SPEC "Configuration": `listingsFile`): a header row naming the columns
// `listing,peer_name,peer_url,notify,timezone` (any order; only `listing` is required), then one row per
// listing × peer; a listing without peers has one row with the peer columns empty. Rows are turned into
// the shape of inline `listings`, and every value keeps the line it came from, so the schema's findings
// name the row. csv-parse reads the CSV (quotes, embedded commas and newlines, a BOM, CRLF).
import { CsvError, parse } from 'csv-parse/sync';
import { substituteVariables } from './env.ts';
import { formatKeyPath } from './key-path.ts';
import { zoneShown } from './schema.ts';
import { type MapFileProblem, type MapFileRead, type MapLocator, unreadable } from './map-file.ts';

/** The columns a listings CSV may have. */
export const csvColumns = ['listing', 'peer_name', 'peer_url', 'notify', 'timezone'] as const;
type Column = (typeof csvColumns)[number];

/** Where one listing's values came from. */
type Lines = { first: number; timezone?: number; peers: number[] };

const notifyValues: Readonly<Record<string, boolean>> = {
  true: true, false: false, yes: true, no: false, 1: true, 0: false, on: true, off: false,
};

/** Reads a listings CSV: the listings in the inline shape, and every problem found (each with its line). */
export function parseListingsCsv(text: string, env: Readonly<Record<string, string | undefined>>): MapFileRead {
  let rows: Array<{ record: string[]; line: number }>;
  try {
    rows = parseRows(text);
  } catch (err) {
    // csv-parse's messages quote the value in error, which may be a credential: only the code is shown.
    const line = err instanceof CsvError ? (err as CsvError & { lines?: number }).lines : undefined;
    const code = err instanceof CsvError ? err.code : undefined;
    return unreadable({ path: '', ...(line === undefined ? {} : { line }),
      message: `invalid CSV: ${(code && csvErrors[code]) ?? code ?? 'unreadable'}` });
  }
  const header = rows[0];
  if (header === undefined) {
    return unreadable({ path: '', message: `the file is empty: it needs a header row (${csvColumns.join(',')})` });
  }
  const problems: MapFileProblem[] = [];
  const columns = headerColumns(header.record, header.line, problems);
  if (columns === undefined) return { listings: {}, locate: () => undefined, problems };

  // Without a prototype: a listing id such as `constructor` or `__proto__` is a key like any other here.
  const listings: Record<string, { timezone?: string; peers: Array<Record<string, unknown>> }> = Object.create(null);
  const lines = new Map<string, Lines>();
  for (const { record, line } of rows.slice(1)) {
    if (record.length > columns.length) {
      problems.push({ path: '', line, message: `the row has ${record.length} fields, the header ${columns.length}` });
      continue;
    }
    let substituted = true;
    const cell = (column: Column): string | undefined => {
      const at = columns.indexOf(column);
      const raw = at === -1 ? undefined : record[at];
      if (raw === undefined || raw === '') return undefined;
      if (!raw.includes('${')) return raw;
      const result = substituteVariables(raw, env);
      if (result.ok) return result.value === '' ? undefined : result.value;
      substituted = false;
      for (const message of result.problems) problems.push({ path: '', line, message: `${column} ${message}` });
      return undefined;
    };
    const id = cell('listing');
    const timezone = cell('timezone');
    const url = cell('peer_url');
    const name = cell('peer_name');
    const notify = cell('notify');
    if (id === undefined) {
      if (substituted) problems.push({ path: '', line, message: 'the row\'s listing column is empty' });
      continue;
    }
    const listing = (listings[id] ??= { peers: [] });
    let at = lines.get(id);
    if (at === undefined) {
      at = { first: line, peers: [] };
      lines.set(id, at);
    }
    // A value whose `${VAR}` failed is reported once, above: the row adds nothing more.
    if (!substituted) continue;
    if (timezone !== undefined) {
      if (listing.timezone === undefined) {
        listing.timezone = timezone;
        at.timezone = line;
      } else if (listing.timezone !== timezone) {
        problems.push({ path: formatKeyPath(['listings', id, 'timezone']), line,
          message: `is ${zoneShown(timezone)} here but ${zoneShown(listing.timezone)} on line ${at.timezone ?? at.first}: `
            + 'one zone per listing' });
      }
    }
    if (url === undefined) {
      if (name !== undefined || notify !== undefined) {
        problems.push({ path: '', line, message: 'the row has a peer_name or notify but no peer_url' });
      }
      continue;
    }
    const peer: Record<string, unknown> = { url };
    if (name !== undefined) peer.name = name;
    if (notify !== undefined) {
      const value = notifyValues[notify.toLowerCase()];
      if (value === undefined) {
        problems.push({ path: formatKeyPath(['listings', id, 'peers', listing.peers.length, 'notify']), line,
          message: 'must be true or false (or yes/no, 1/0; empty: true)' });
      } else peer.notify = value;
    }
    listing.peers.push(peer);
    at.peers.push(line);
  }
  return { listings, locate: csvLocator(lines), problems };
}

/**
 * The records with the line each starts on. csv-parse counts the line a record ends on (a CRLF inside quotes
 * twice): the start is found here from where the previous record ended, past the lines it skipped (blank, only
 * commas, or a comment), counting newlines once.
 */
function parseRows(text: string): Array<{ record: string[]; line: number }> {
  // CR alone (old Mac exports) and CRLF end a line as LF does: counted once, and csv-parse sees one kind.
  const buffer = Buffer.from(text.replace(/\r\n?/g, '\n'));
  // A line starting with # is a comment; a # inside a value (a URL's fragment) is not. A line of spaces or
  // commas only is skipped as an empty one.
  const options = { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true,
    skip_records_with_empty_values: true, comment: '#', comment_no_infix: true } as const;
  const parsed = parse(buffer, options) as unknown as Array<{ record: string[]; info: { bytes: number } }>;
  let counted = 0;
  let newlines = 0;
  const lineAt = (offset: number) => {
    for (; counted < offset; counted++) if (buffer[counted] === 0x0a) newlines += 1;
    return newlines + 1;
  };
  let end = 0;
  return parsed.map(({ record, info }) => {
    let start = end;
    for (;;) {
      const eol = buffer.indexOf(0x0a, start);
      if (eol === -1) break;
      const line = buffer.toString('latin1', start, eol);
      // What csv-parse skips: a line of blanks, commas and empty quoted values, or a comment (# first).
      if (!/^[\s,"]*$/.test(line) && !/^(\u00ef\u00bb\u00bf)?\s*#/.test(line)) break;
      start = eol + 1;
    }
    end = info.bytes;
    return { record, line: lineAt(start) };
  });
}

/** What a CSV that does not parse is told, by csv-parse's code (its own messages quote the value). */
const csvErrors: Readonly<Record<string, string>> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted value is never closed',
  // csv-parse 7 gives this one without the CSV_ prefix.
  INVALID_OPENING_QUOTE: 'a quote inside a value that is not quoted (quote the whole value, doubling the quotes in it)',
  CSV_INVALID_OPENING_QUOTE: 'a quote inside a value that is not quoted (quote the whole value, doubling the quotes in it)',
  CSV_INVALID_CLOSING_QUOTE: 'text after the closing quote of a value',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'text after the closing quote of a value',
  CSV_MAX_RECORD_SIZE: 'a row too long',
};

/** The header's columns, or undefined with the problems found. */
function headerColumns(record: readonly string[], line: number, problems: MapFileProblem[]): Column[] | undefined {
  const columns: Column[] = [];
  for (const raw of record) {
    const name = raw.toLowerCase();
    if (!(csvColumns as readonly string[]).includes(name)) {
      problems.push({ path: '', line, message: `unknown column "${raw}" (the columns are ${csvColumns.join(', ')})` });
    } else if (columns.includes(name as Column)) {
      problems.push({ path: '', line, message: `the column ${name} appears twice` });
    } else columns.push(name as Column);
  }
  const joined = record.join(',');
  const separator = [';', '\t', '|'].find((c) => joined.includes(c));
  if (problems.length > 0 && separator !== undefined) {
    // A spreadsheet in a European locale saves CSV with semicolons.
    problems.push({ path: '', line, message: `the header row seems separated by ${JSON.stringify(separator)}: `
      + 'a listings CSV is separated by commas' });
  }
  if (!columns.includes('listing') && problems.length === 0) {
    problems.push({ path: '', line, message: `the header row has no listing column (the columns are ${csvColumns.join(', ')})` });
  }
  return problems.length > 0 ? undefined : columns;
}

/** Finds the row of a value: a peer's row, the row giving the zone, else the listing's first row. */
function csvLocator(lines: ReadonlyMap<string, Lines>): MapLocator {
  return (path) => {
    const at = lines.get(String(path[0]));
    if (at === undefined) return undefined;
    if (path[1] === 'timezone') return at.timezone ?? at.first;
    if (path[1] === 'peers' && typeof path[2] === 'number') return at.peers[path[2]] ?? at.first;
    return at.first;
  };
}
