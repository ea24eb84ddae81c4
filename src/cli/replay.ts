// `icalpush replay FILE…` (SPEC "Push"): the push decision model run over captured exports of one listing,
// one step per file, read as the sidecar reads a listing's own feed: nights counted from the capture's
// "today", a sudden drop held for the hold span, an export cut off or not a calendar skipped.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseDuration } from '../config/duration.ts';
import type { StoredNights } from '../feeds/change-log.ts';
import { analyzeCalendar, calendarNights } from '../ical/analyze.ts';
import { isDate, usableTimeZone } from '../push/decide/dates.ts';
import { type Decision, decide, type PeerEvidenceSource } from '../push/decide/decide.ts';
import { dropFacts } from '../push/decide/drop-facts.ts';
import { type DropJudgement, judgeDrop } from '../push/decide/drop.ts';
import { heldDecision } from '../push/decide/made-by-callers.ts';
import { nightsOfRuns } from '../push/decide/night-runs.ts';
import { countFrom, todayFor } from '../push/decide/today.ts';
import { nightsRequestAt } from '../push/plans.ts';
import type { CliIo } from './program.ts';
export { replayHelp } from './replay-help.ts';

/** The options of `replay`, as commander gives them. */
export type ReplayOptions = {
  /** Capture times, one per file in order (ISO 8601 instants); absent: from the file names. */
  at?: readonly string[];
  /** The listing's IANA zone; absent: the conservative rule (decide/today.ts). */
  timezone?: string;
  /** Peers' exports, evidence at every step. */
  peer?: readonly string[];
  /** How long a drop is held before it applies (config/duration.ts); default `2h`, as `snapshots.hold.span`. */
  holdSpan?: string;
  json?: boolean;
};

/** A step whose file could not be used: reported in the place of its decision. */
export type UnreadableStep = {
  kind: 'unreadable';
  rule: 'file-unreadable' | 'not-calendar';
  at: string;
  why: string;
};

/** One line of `replay --json`. */
export type ReplayLine = { file: string } & (Decision | UnreadableStep);

// The sidecar's defaults (config/schema.ts `snapshots.hold`).
const defaultHoldSpan = '2h';
const holdFraction = 0.5;
const noonMs = 12 * 60 * 60 * 1000;

/** Replays `files` in order; resolves with the exit code (0 every file read, 1 some file missing or not a
 * complete calendar, 2 a usage error: nothing is replayed then). */
export async function runReplay(files: readonly string[], options: ReplayOptions, io: CliIo): Promise<number> {
  const plan = planOf(files, options);
  if (typeof plan === 'string') {
    io.stderr.write(`${plan}\n`);
    return 2;
  }
  const peers: Peer[] = [];
  for (const peer of plan.peers) {
    const read = await readExport(peer.path);
    if (read.kind !== 'read') {
      // Without one of its peers every step would be judged on less evidence than the sidecar has.
      io.stderr.write(`${peer.path}: ${read.why}; the peer is needed as evidence, nothing replayed\n`);
      return 1;
    }
    peers.push({ ...peer, analysis: read.analysis, nights: new Map() });
  }

  const fileWidth = Math.max(...plan.steps.map((step) => step.name.length));
  let exitCode = 0;
  let baseline: { nights: StoredNights; entities: number } | undefined;
  let heldSince: number | undefined;
  for (const step of plan.steps) {
    const at = new Date(step.atMs).toISOString();
    const read = await readExport(step.path);
    if (read.kind !== 'read') {
      exitCode = 1;
      io.stderr.write(`${step.path}: ${read.why}; skipped, the previous read stays the baseline\n`);
      write(io, options, fileWidth, { file: step.name, kind: 'unreadable', rule: read.kind, at,
        why: `${read.why}: skipped, the previous read stays the baseline` });
      continue;
    }
    const now = await nightsOf(read.analysis, step.atMs, plan.zone);
    const entities = read.analysis.entities.length;
    const input = {
      before: baseline?.nights, after: now, today: todayFor(step.atMs, plan.zone),
      peers: await Promise.all(peers.map((peer) => evidenceOf(peer, step.atMs, plan.zone))),
      elapsedMs: baseline?.nights.at === undefined ? 0 : step.atMs - baseline.nights.at, at: step.atMs,
    };
    let decision = decide(input);
    const drop = baseline ? dropOf(baseline, now, entities) : undefined;
    if (drop) {
      heldSince ??= step.atMs;
      // The engine's hold (feeds/engine.ts): held from the first read that showed the drop, applied once
      // a read still shows it after the span.
      if (step.atMs - heldSince < plan.holdSpanMs) {
        decision = heldDecision(step.atMs, drop, plan.holdSpanMs, { ...(baseline ? { before: baseline.nights } : {}),
          after: now });
        write(io, options, fileWidth, { file: step.name, ...decision });
        continue;
      }
    }
    heldSince = undefined;
    baseline = { nights: now, entities };
    write(io, options, fileWidth, { file: step.name, ...decision });
  }
  return exitCode;
}

/** The capture time a file name gives (see `replay --help`): the last `YYYY-MM-DD` in its base name,
 * optionally with `THHMM`, `THHMMSS`, `THH:MM` or `THH:MM:SS` and `Z`; a date alone is 12:00Z of it.
 * Undefined when there is no date; a string saying why when the stamp is there but not usable. */
export function fileNameTime(path: string): number | string | undefined {
  const name = basename(path);
  const stamps = /(?<!\d)(\d{4}-\d{2}-\d{2})(?:T(?:(\d{2})(\d{2})(\d{2})?|(\d{2}):(\d{2})(?::(\d{2}))?)(Z?))?(?!\d)/g;
  const last = [...name.matchAll(stamps)].at(-1);
  if (!last) return undefined;
  const [stamp, date, ...rest] = last as unknown as [string, string, ...(string | undefined)[]];
  const [hh, mm, ss, hhColon, mmColon, ssColon, zulu] = rest;
  const after = name.slice((last.index ?? 0) + stamp.length);
  if (!isDate(date)) return `${date} in the file name is not a calendar date`;
  if (hh === undefined && hhColon === undefined) {
    if (/^T\d/.test(after)) return `the time after ${date} in the file name is not THHMM, THHMMSS, THH:MM or THH:MM:SS`;
    return Date.parse(`${date}T00:00:00Z`) + noonMs;
  }
  if (zulu !== 'Z') return `the time in the file name (${stamp}) has no Z: only UTC times are read from file names`;
  const hours = Number(hh ?? hhColon);
  const minutes = Number(mm ?? mmColon);
  const seconds = Number(ss ?? ssColon ?? 0);
  if (hours > 23 || minutes > 59 || seconds > 59) return `${stamp} in the file name is not a time of day`;
  return Date.parse(`${date}T00:00:00Z`) + ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

/** An `--at` value as milliseconds, or undefined when it is not an ISO 8601 instant (date, time, and Z or
 * an offset). */
export function instantOf(value: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/.exec(value);
  if (!match || !isDate(match[1] as string)) return undefined;
  const [, , hours, minutes, seconds, offsetHours, offsetMinutes] = match;
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds ?? 0) > 59) return undefined;
  if (Number(offsetHours ?? 0) > 23 || Number(offsetMinutes ?? 0) > 59) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

type Plan = {
  steps: { path: string; name: string; atMs: number }[];
  peers: { path: string; name: string; atMs: number | undefined }[];
  zone: string | undefined;
  holdSpanMs: number;
};

type Peer = Plan['peers'][number] & {
  analysis: ReturnType<typeof analyzeCalendar>;
  /** Busy nights by the date they were counted from. */
  nights: Map<string, Promise<string[]>>;
};

// Every usage problem is found before any file is read: a replay either runs whole or not at all.
function planOf(files: readonly string[], options: ReplayOptions): Plan | string {
  if (files.length === 0) return 'replay: give at least one export FILE';
  let zone: string | undefined;
  if (options.timezone !== undefined) {
    zone = usableTimeZone(options.timezone);
    if (zone === undefined) return `--timezone: not an IANA time zone name (like Europe/Rome): ${options.timezone}`;
  }
  const holdSpanMs = parseDuration(options.holdSpan ?? defaultHoldSpan);
  if (Number.isNaN(holdSpanMs)) return `--hold-span: not a duration (like 30m, 2h, 1d, or 0): ${options.holdSpan}`;
  const at = options.at ?? [];
  if (at.length > 0 && at.length !== files.length) {
    return `--at: ${at.length} value${at.length === 1 ? '' : 's'} for ${files.length} files: give one per file, in order`;
  }
  const steps: Plan['steps'] = [];
  for (const [i, path] of files.entries()) {
    let atMs: number | undefined;
    const given = at[i];
    if (given !== undefined) {
      atMs = instantOf(given);
      if (atMs === undefined) return `--at: not an ISO 8601 instant (like 2026-08-22T20:12:00Z): ${given}`;
    } else {
      const named = fileNameTime(path);
      if (typeof named === 'string') return `${path}: ${named}; give --at`;
      if (named === undefined) {
        return `${path}: no capture time: give --at, or name the file with its UTC time (…_2026-08-22T2012Z.ics)`;
      }
      atMs = named;
    }
    const previous = steps.at(-1);
    if (previous && atMs < previous.atMs) {
      return `${path}: captured at ${new Date(atMs).toISOString()}, before the file given before it ` +
        `(${previous.path}, ${new Date(previous.atMs).toISOString()}): give the files in capture order`;
    }
    steps.push({ path, name: basename(path), atMs });
  }
  const peers: Plan['peers'] = [];
  for (const path of options.peer ?? []) {
    const named = fileNameTime(path);
    if (typeof named === 'string') return `--peer ${path}: ${named}`;
    peers.push({ path, name: basename(path), atMs: named });
  }
  return { steps, peers, zone, holdSpanMs };
}

type ExportRead =
  | { kind: 'read'; analysis: ReturnType<typeof analyzeCalendar> }
  | { kind: 'file-unreadable' | 'not-calendar'; why: string };

async function readExport(path: string): Promise<ExportRead> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { kind: 'file-unreadable', why: `cannot read the file (${typeof code === 'string' ? code : String(err)})` };
  }
  const analysis = analyzeCalendar(body, undefined, { keepMemo: false });
  // As the sidecar serves it (feeds/engine.ts): no END:VCALENDAR, no snapshot.
  if (!analysis.complete) return { kind: 'not-calendar', why: 'not a complete calendar (cut off, or not iCalendar)' };
  return { kind: 'read', analysis };
}

// The nights as the sidecar stores them for a read at `atMs` (push/plans.ts nightsFor, feeds/engine.ts).
async function nightsOf(analysis: ReturnType<typeof analyzeCalendar>, atMs: number,
  zone: string | undefined): Promise<StoredNights> {
  const request = nightsRequestAt(atMs, zone);
  const result = await calendarNights(analysis, { today: request.today, horizonDays: request.days,
    ...(zone === undefined ? {} : { zone }) });
  return { ...request, at: atMs, ...result };
}

function evidenceOf(peer: Peer, atMs: number, zone: string | undefined): Promise<PeerEvidenceSource> {
  const today = countFrom(atMs, zone);
  let busy = peer.nights.get(today);
  if (!busy) {
    busy = nightsOf(peer.analysis, atMs, zone).then((nights) => nights.busy);
    peer.nights.set(today, busy);
  }
  return busy.then((nights) => ({ name: peer.name, busy: nights, freed: {}, readAt: peer.atMs ?? atMs }));
}

// The hold's judgement (decide/drop.ts) of a read against the last applied one.
function dropOf(baseline: { nights: StoredNights; entities: number }, now: StoredNights,
  entities: number): (DropJudgement & { verdict: 'hold' }) | undefined {
  const facts = dropFacts({ before: baseline.entities, after: entities }, { before: baseline.nights, after: now });
  const judgement = judgeDrop(facts, holdFraction);
  return judgement.verdict === 'hold' ? judgement : undefined;
}

// Lines for people: time, file, kind (rule), nights each way, why; columns padded to the widest possible.
const kindWidth = 'no-night-change (nights-unchanged)'.length;
const countsWidth = '+730 -730'.length;

function write(io: CliIo, options: ReplayOptions, fileWidth: number, line: ReplayLine): void {
  if (options.json) {
    io.stdout.write(`${JSON.stringify(line)}\n`);
    return;
  }
  const at = line.at.replace(/\.000Z$/, 'Z');
  const counts = line.kind === 'unreadable' ? ''
    : `+${nightsOfRuns(line.nights.added).length} -${nightsOfRuns(line.nights.removed).length}`;
  const kind = `${line.kind} (${line.rule})`;
  io.stdout.write(`${at}  ${line.file.padEnd(fileWidth)}  ${kind.padEnd(kindWidth)}  ${counts.padEnd(countsWidth)}  ` +
    `${line.why}\n`);
}
