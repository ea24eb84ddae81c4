// One listing through the real app on a fake clock: an upstream serving the listing's feed (`feed.text`,
// changed by the test), one peer counting the HEADs it gets, and the decisions the app logged. What the
// push regression tests share.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';
import { startApp, type TestApp } from './app.ts';
import { calendarOf } from './hostile.ts';
import { eventually } from './network.ts';
import { startServer } from './servers.ts';

/** The listing the rig serves. */
export const rigListing = 'x';

/** A decision as the log line carries it (the fields the tests check). */
export type LoggedDecision = {
  kind: string;
  rule: string;
  nights: { added: string[]; removed: string[] };
  notified: string[];
  version?: number;
  why: string;
};

/** Options of startListingRig. */
export type RigOptions = {
  startMs: number;
  /** The listing's feed at the start. */
  feed: string;
  /** What the peer's feed shows (default: nothing it could explain). */
  peerFeed?: string;
  /** More of the listing's config entry (`timezone`…). */
  listing?: Record<string, unknown>;
  /** More config (`snapshots`…). */
  config?: Record<string, unknown>;
};

/** Starts the rig. */
export async function startListingRig(t: TestContext, options: RigOptions) {
  const clock: FakeClock = createFakeClock(options.startMs);
  const feed = { text: options.feed };
  const upstream = await startServer(t, (req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === `/calendar/${rigListing}.ics`) {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed.text);
      return;
    }
    res.writeHead(404).end();
  });
  const heads: number[] = [];
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(clock.now());
      res.writeHead(200).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(options.peerFeed ?? calendarOf());
  });
  const app = await startApp(t, upstream.url, {
    listings: { [rigListing]: { ...options.listing, peers: [{ name: 'peer', url: `${peer.url}/ical/${rigListing}.ics` }] } },
    push: { watch: 0 },
    ...options.config,
  }, undefined, clock);
  return { clock, feed, heads, app };
}

/** Every decision the app logged so far, oldest first. */
export const decisionsLogged = (app: TestApp) =>
  app.logs.filter((l) => l.msg === 'listing change classified') as unknown as LoggedDecision[];

/** A GET of the feed through the sidecar. */
export async function getFeed(app: TestApp): Promise<void> {
  const res = await request(`${app.url}/calendar/${rigListing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

/** A GET of the feed; resolves with the decision that read made (the n-th one logged). */
export async function readFeed(app: TestApp, n: number): Promise<LoggedDecision> {
  await getFeed(app);
  await eventually(() => decisionsLogged(app).length >= n, 10_000);
  return decisionsLogged(app)[n - 1] as LoggedDecision;
}

/** GET /_icalpush/listings/x. */
export async function listingJson<T>(app: TestApp): Promise<T> {
  const res = await request(`${app.url}/_icalpush/listings/${rigListing}`);
  assert.equal(res.statusCode, 200);
  return await res.body.json() as T;
}
