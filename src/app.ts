// The composition root: builds every part from the validated config and the injected
// dependencies, and owns their shutdown. Tests build the app exactly the same way.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type Clock, systemClock } from './clock.ts';
import { type ConfigResult, formatProblems, type MapSources } from './config/load.ts';
import { keysNeedingRestart, mapChanges, reloadedConfig } from './config/reloadable.ts';
import type { Config } from './config/schema.ts';
import { createFeedAnalyzer } from './feeds/analyzer.ts';
import { createChangeLog } from './feeds/change-log.ts';
import { createFeedEngine, type FeedEngine } from './feeds/engine.ts';
import { createFeedMetrics, registerHeldDropsGauge } from './feeds/feed-metrics.ts';
import { createFeedFetcher } from './feeds/fetch.ts';
import { createFeedHandler } from './feeds/serve.ts';
import { statusReport } from './feeds/status.ts';
import { createHooks } from './hooks/hooks.ts';
import { createListingActivity } from './push/activity.ts';
import { createDecisionLog } from './push/decision-log.ts';
import { createNotifier } from './push/notifier.ts';
import { buildListingPlans, createListingPlans, createLivePlans } from './push/plans.ts';
import { createPropagationMetric, createPush, type Push } from './push/push.ts';
import { createAdminHandler } from './http/admin.ts';
import { createConsoleHandler } from './console/console-handler.ts';
import { createConsoleModel } from './console/console-model.ts';
import { createMinuteRecorder } from './console/minute-series.ts';
import { createPassthrough, type PassthroughDecoration } from './http/proxy.ts';
import { createTrustedProxies } from './http/trust-proxy.ts';
import { createRouter, requestPath, type Route } from './http/router.ts';
import { createHttpServer } from './http/server.ts';
import { parseListen } from './http/listen-address.ts';
import { createOutboundClient, createUpstreamPool } from './http/clients.ts';
import { briefError, type ErrorCode, errorCodes, hasCode, IcalpushError } from './errors.ts';
import { sendError } from './http/respond.ts';
import type { Logger } from './log.ts';
import { createRedactor, type Redactor } from './redact.ts';
import { createRegistry } from './metrics/registry.ts';
import { createEventLoopDelayMetric } from './metrics/event-loop-delay.ts';
import { createRequestMetrics } from './metrics/request-metrics.ts';
import { createReplicas } from './store/replicas.ts';
import type { Store } from './store/store.ts';
import { createCoalesced } from './util/coalesce.ts';
import { createWorkerPool, type WorkerPool } from './work/pool.ts';

/** What the app is given rather than builds: the store, the logger, the clock and (tests) a worker pool. */
export type AppDeps = {
  store: Store;
  logger: Logger;
  clock?: Clock;
  /** Worker threads for feed analysis; by default the app's own, closed with it. */
  pool?: WorkerPool;
  /** Reads the configuration again, for a reload (SPEC "Reload"); without it, a reload is refused. */
  reloadConfig?: () => Promise<ConfigResult>;
  /** Where the connection map at start came from (status shows it); default: all inline. */
  map?: MapSources;
  /** The config file's name in the problems a refused reload lists; default `config`. */
  configName?: string;
};

/** What a reload did: the new map in force, with what changed and what waits for a restart; or refused, with
 * every problem, the map in force unchanged. */
export type ReloadOutcome =
  | { ok: true; at: string; listings: number; added: number; removed: number; changed: number;
    restartNeeded: string[]; }
  | { ok: false; at: string; problems: string[] };

/** The worker entry the app's own pool runs. */
export const feedWorkerEntry = new URL('./work/feed-worker.ts', import.meta.url);

/** A built app. */
export type App = {
  readonly server: Server;
  /** Binds `config.listen`; resolves with the bound address and its base URL. */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Graceful shutdown: drain in-flight requests (bounded), stop push and hooks, close the clients and the store. */
  close(): Promise<void>;
  /** The feed engine: reads and snapshots feeds (also used by push). */
  readonly feeds: FeedEngine;
  /** Push: notifications out and in. */
  readonly push: Push;
  /** Re-reads the config and its listings file and puts the new map in force, atomically (SPEC "Reload").
   * Calls during a reload share one more reload after it. */
  reload(): Promise<ReloadOutcome>;
};

/** Builds the app from a validated config; nothing listens until listen(). */
export function createApp(config: Config, deps: AppDeps): App {
  const { logger, store } = deps;
  const clock = deps.clock ?? systemClock;
  const upstream = createUpstreamPool({
    origin: new URL(config.upstream).origin,
    connectTimeoutMs: config.timeouts.connect,
    timeoutMs: config.timeouts.upstream,
  });
  const trustedProxies = createTrustedProxies(config.trustProxy);
  const passthrough = createPassthrough(upstream, trustedProxies);
  const router = createRouter(config.feeds.map((feed) => feed.path));
  // Knows the feeds patterns, so a `{secret}` segment is hidden even when it looks like a word.
  const redact = createRedactor(config.feeds.map((feed) => feed.path));
  let closePromise: Promise<void> | undefined;

  const http = createHttpServer({
    logger,
    onRequest: handle,
    onUpgrade(req, socket, head) {
      if (!isOriginForm(req.url)) {
        socket.end(targetInvalidUpgradeAnswer);
        return;
      }
      const route = router.route(req.url ?? '/');
      if (route.kind === 'admin') {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      passthrough.upgrade(req, socket, head, (err) => {
        logger.warn(
          { err, req: { method: req.method, url: redact(req.url ?? '') } },
          'upgrade failed',
        );
      });
    },
  });
  const registry = createRegistry();
  const metrics = createRequestMetrics(registry, http.inflight);
  const feedMetrics = createFeedMetrics(registry);
  const propagation = createPropagationMetric(registry);
  const notified = propagation.labels('notified');
  // Every outbound request but the passthrough goes through this one client; closing it aborts them all.
  const outbound = createOutboundClient({ clock, connectTimeoutMs: config.timeouts.connect });
  const replaced = registry.counter('icalpush_worker_replaced_total',
    'Feed analysis workers terminated and replaced, by reason: timeout (a feed too costly to read), crash.', ['reason']);
  const pool = deps.pool ?? createWorkerPool({
    entry: feedWorkerEntry,
    clock,
    onReplace(reason) {
      replaced.labels(reason).inc();
      logger.warn({ reason }, 'feed worker replaced');
    },
  });
  const eventLoopDelay = createEventLoopDelayMetric(registry);
  registry.gauge('icalpush_worker_tasks', 'Feed analysis tasks, by state: running on a worker thread, or queued.',
    ['state'], (gauge) => {
      const { running, queued } = pool.stats();
      gauge.labels('running').set(running);
      gauge.labels('queued').set(queued);
    });
  const analyzer = createFeedAnalyzer(pool);
  // Hooks have no config: their `feed` fields are redacted again here, with the feeds patterns. A feed
  // key is its target, then ` auth:<hash>` for feeds behind HTTP auth.
  const redactFeed = (feed: unknown) => (typeof feed === 'string' ? feed.replace(/^\S+/, (target) => redact(target)) : feed);
  const hooksLogger = logger.child({}, {
    serializers: {
      hook: (hook: unknown) => (typeof hook === 'object' && hook !== null && 'feed' in hook
        ? { ...hook, feed: redactFeed(hook.feed) } : hook),
    },
  });
  const notifier = createNotifier({
    store,
    clock,
    logger,
    registry,
    client: outbound,
    userAgent: config.push.userAgent,
    retryForMs: config.push.retryFor,
    onSent: (_peer, ms) => notified.observe(ms / 1000),
  });
  const hooks = createHooks({
    store,
    clock,
    logger: hooksLogger,
    registry,
    client: outbound,
    enabled: config.hooks.enabled,
    allowPrivateNetworks: config.hooks.allowPrivateNetworks,
    maxPerFeed: config.hooks.maxPerFeed,
    userAgent: `${config.push.userAgent} icalpush`,
  });
  // The config in force: a reload replaces it (and the map), what was built from the start config stays.
  let current = {
    config,
    map: deps.map ?? { inline: Object.keys(config.listings).length },
    loadedAt: clock.now(),
    reloads: 0,
    lastReload: undefined as ReloadOutcome | undefined,
  };
  let ownHeaderNames = headerNamesOf(config);
  const plans = createLivePlans(createListingPlans(config, clock));
  const activity = createListingActivity(clock);
  // Several replicas on one store: who is alive, for the watch's partition and the journal's recovery.
  const replicas = createReplicas({ store, clock, logger, heartbeatMs: heartbeatFor(config.push.watch.intervalMs) });
  const feeds = createFeedEngine({
    store,
    fetcher: createFeedFetcher({
      upstream,
      client: outbound,
      maxBodyBytes: config.snapshots.maxBodyBytes,
      deadlineMs: config.timeouts.upstream,
      clock,
      keyHeaders: () => ownHeaderNames,
    }),
    analyzer,
    clock,
    logger,
    metrics: feedMetrics,
    redact,
    retentionMs: config.snapshots.retention,
    maxFeeds: config.snapshots.maxFeeds,
    maxVariantsPerPath: config.snapshots.maxVariantsPerPath,
    maxEntitiesPerFeed: config.snapshots.maxEntitiesPerFeed,
    hold: { spanMs: config.snapshots.hold.span, fraction: config.snapshots.hold.fraction },
    nightsFor: plans.nightsFor,
    isProtected: (feed) => plans.ownPlan(feed) !== undefined,
    lastChangeSeen: (feed) => {
      const plan = plans.ownPlan(feed);
      return plan ? activity.lastChangeSeen(plan.id) : undefined;
    },
    changeLog: createChangeLog(store, { replica: replicas.id, isAlive: (id) => replicas.isAlive(id),
      now: () => clock.now() }),
    keepAnswers: config.feeds.some((feed) => feed.maxAge > 0),
  });
  const pushed = createPush({
    store,
    replicas,
    config,
    engine: feeds,
    plans,
    notifier,
    client: outbound,
    analyzer,
    decisions: createDecisionLog(store),
    activity,
    redact,
    clock,
    logger,
    registry,
    propagation,
  });
  // A change marks the feed's hooks due and is classified for push, side by side: hooks never delay iPP.
  feeds.onChange((change) => hooks.fire(change.feed.key, change.tag));
  feeds.onChange((change) => pushed.onFeedChange(change));
  feeds.onHold((held) => pushed.onHeld(held));
  registerHeldDropsGauge(registry, () => feeds.heldDrops());
  const feedHandler = createFeedHandler({
    engine: feeds,
    metrics: feedMetrics,
    clock,
    publicBaseUrl: config.publicBaseUrl,
    trustedProxies,
    maxAge: new Map(config.feeds.map((feed) => [feed.path, feed.maxAge])),
    onHead: (route) => pushed.inbound(route.listing),
    onHookHeader(feed, value, seen) {
      void hooks.register(feed.key, value, seen);
    },
  });
  // The console's series are sampled from the registry once a minute and when a console page is drawn (the metrics
  // it follows only): nothing is added to a feed request's path.
  const recorder = createMinuteRecorder({ registry, clock });
  const consoleModel = createConsoleModel({
    clock,
    recorder,
    plans: () => plans.byId,
    summaries: (ids) => pushed.summaries(ids),
    peerCounts: () => pushed.peerCounts(),
    listing: (id) => pushed.listing(id),
    pending: () => notifier.pending(),
    feeds: () => feeds.states(),
    replica: () => ({ id: replicas.id, store: store.kind, live: replicas.live() }),
    map: () => mapStatus(),
    redact,
    holdSpanMs: config.snapshots.hold.span,
  });
  const admin = createAdminHandler({
    console: createConsoleHandler({ model: consoleModel, recorder, now: () => clock.now() }),
    store,
    registry,
    clock,
    status: async () => ({
      ...(await statusReport(current.config, feeds, clock)),
      map: mapStatus(),
      // Which replica answered, and the fleet it sees (one replica, itself, with a store of its own).
      replica: { id: replicas.id, store: store.kind, live: replicas.live() },
      push: await pushed.status(),
    }),
    async changed(listing) {
      if (!pushed.knows(listing)) return undefined;
      return { notified: (await pushed.changed(listing)).notified };
    },
    listing: (id) => pushed.listing(id),
    reload: () => reload(),
    token: config.admin.token,
    isClosing: http.isClosing,
  });
  // Request lines are built from an allow-list (redacted URL, no headers), so they skip the
  // redaction pass: it was a third of the per-request logging cost, measured.
  const requestLog = logger.child({}, { redact: { paths: [] } });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = clock.now();
    if (!isOriginForm(req.url)) {
      answerOddTarget(req, res, startedAt);
      return;
    }
    const route = router.route(req.url ?? '/');
    // Read now: once the answer is sent, the socket may already serve the next request.
    const fields = requestFields(req, route, redact);
    let errorCode: string | undefined;
    if (route.kind === 'admin') {
      await admin(req, res, route.path);
    } else {
      const feedOutcome = route.kind === 'feed' ? await answerFeed(req, res, route) : undefined;
      if (feedOutcome?.kind === 'answered') errorCode = feedOutcome.errorCode;
      else errorCode = await passThrough(req, res, fields, feedOutcome?.decoration);
    }
    const durationMs = clock.now() - startedAt;
    metrics.record(route.kind, res.statusCode, durationMs, errorCode);
    logRequest(fields, res.statusCode, durationMs, errorCode);
  }

  /**
   * `*` and absolute-form targets (RFC 9112 §3.2) are answered here: passed on as they are, the
   * upstream would be asked for something no client of a sidecar means, and a healthy upstream
   * would show up as unreachable. `OPTIONS *` asks about the server as a whole (RFC 9110 §9.3.7).
   */
  function answerOddTarget(req: IncomingMessage, res: ServerResponse, startedAt: number): void {
    const fields = requestFields(req, { kind: 'passthrough', path: req.url ?? '' }, redact);
    let errorCode: ErrorCode | undefined;
    if (req.method === 'OPTIONS' && req.url === '*') {
      res.writeHead(204).end();
    } else {
      errorCode = 'REQUEST_TARGET_INVALID';
      req.resume();
      sendError(res, new IcalpushError(errorCode, 'request target is not origin-form'));
    }
    const durationMs = clock.now() - startedAt;
    // Counted as passthrough, but not as an upstream error: the upstream was never asked.
    metrics.record('passthrough', res.statusCode, durationMs, undefined);
    logRequest(fields, res.statusCode, durationMs, errorCode);
  }

  function logRequest(
    fields: ReturnType<typeof requestFields>,
    statusCode: number,
    durationMs: number,
    errorCode: string | undefined,
  ): void {
    requestLog.info(
      {
        req: fields,
        res: { statusCode },
        durationMs,
        ...(errorCode === undefined ? {} : { errCode: errorCode }),
      },
      'request',
    );
  }

  async function answerFeed(req: IncomingMessage, res: ServerResponse, route: Route & { kind: 'feed' }) {
    try {
      return await feedHandler(req, res, route);
    } catch (err) {
      // A bug must not take the process down or leave the client hanging.
      logger.error({ err, req: requestFields(req, route, redact) }, 'feed request failed');
      sendError(res, new IcalpushError('INTERNAL_ERROR', 'feed request failed', { cause: err }));
      return { kind: 'answered' as const, errorCode: 'INTERNAL_ERROR' };
    }
  }

  async function passThrough(req: IncomingMessage, res: ServerResponse, fields: ReturnType<typeof requestFields>,
    decoration?: PassthroughDecoration) {
    const outcome = await passthrough.web(req, res, decoration);
    if (outcome.ok) {
      pushed.afterProxied(req.method ?? 'GET', requestPath(req.url ?? '/'), outcome.statusCode);
      return undefined;
    }
    if (outcome.error.code !== 'CLIENT_ABORTED') {
      // Expected failures (refused, timed out): code and cause, no stack trace.
      const cause = outcome.error.cause as { code?: string; message?: string } | undefined;
      logger.warn({ err: { code: outcome.error.code, cause: cause?.code ?? cause?.message }, req: fields }, 'upstream error');
    }
    return outcome.error.code;
  }

  let resumeTimer: ReturnType<Clock['setTimeout']> | undefined;
  let recoveryTimer: ReturnType<Clock['setTimeout']> | undefined;
  /** With several replicas, the changes a dead one journaled and never processed are taken over. */
  function scheduleRecovery(): void {
    recoveryTimer = clock.setTimeout(() => {
      void feeds.recover()
        .then((recovered) => {
          if (recovered > 0) logger.info({ recovered }, 'feed changes of a dead replica taken over');
        }, () => undefined)
        .finally(() => {
          if (closePromise === undefined) scheduleRecovery();
        });
    }, recoveryIntervalMs);
  }
  let resumed = false;
  /**
   * What the store holds from before: the outbox, due hooks, and changes journaled before a crash (classified,
   * their hooks fired, again). A store that cannot be reached at start (Redis down) is no reason not to serve
   * (SPEC "Several replicas": degraded mode): this is tried again every few seconds until it answers.
   */
  async function resume(): Promise<void> {
    if (resumed || closePromise !== undefined) return;
    try {
      await notifier.start();
      await hooks.start();
      const recovered = await feeds.recover();
      if (recovered > 0) logger.info({ recovered }, 'feed changes recovered');
      resumed = true;
    } catch (err) {
      if (!hasCode(err, 'STORE_UNAVAILABLE')) throw err;
      logger.warn({ err: briefError(err) },
        'store unreachable: outbox, hooks and journal resumed once it answers');
      resumeTimer = clock.setTimeout(() => {
        void resume().catch((e: unknown) => logger.error({ err: e }, 'resuming from the store failed'));
      }, resumeRetryMs);
    }
  }

  /** The connection map's source for status: where it came from, when it was loaded, the last reload. */
  function mapStatus() {
    const { map, loadedAt, reloads, lastReload } = current;
    return {
      listings: plans.byId.size,
      inline: map.inline,
      ...(map.listingsFile ? { listingsFile: map.listingsFile } : {}),
      loadedAt: new Date(loadedAt).toISOString(),
      reloads,
      ...(lastReload ? { lastReload } : {}),
    };
  }

  const reload = createCoalesced(async (): Promise<ReloadOutcome> => {
    const at = () => new Date(clock.now()).toISOString();
    if (closePromise !== undefined) return { ok: false, at: at(), problems: ['shutting down'] };
    if (!deps.reloadConfig) {
      return { ok: false, at: at(), problems: ['this sidecar was not started from a configuration file'] };
    }
    const result = await deps.reloadConfig();
    if (!result.ok) {
      const problems = formatProblems(result.problems, deps.configName ?? 'config').split('\n');
      const refused: ReloadOutcome = { ok: false, at: at(), problems };
      current.lastReload = refused;
      logger.error({ problems, listings: plans.byId.size }, 'reload refused: the map in force is kept');
      return refused;
    }
    // What is reloaded of the new config, on what runs since the start (its feeds patterns, its router).
    const next = reloadedConfig(config, result.config);
    // Built and compared in slices, while requests are served from the map in force.
    const nextPlans = await buildListingPlans(next, clock);
    const changes = await mapChanges(current.config.listings, next.listings);
    const restartNeeded = keysNeedingRestart(config, result.config);
    const nextHeaderNames = headerNamesOf(next);
    if (closePromise !== undefined) return { ok: false, at: at(), problems: ['shutting down'] };
    // The swap, in one turn of the event loop: no request sees half a map.
    plans.replace(nextPlans);
    const forgetting = pushed.reconfigure(next);
    ownHeaderNames = nextHeaderNames;
    const outcome: ReloadOutcome = { ok: true, at: at(), listings: nextPlans.byId.size, ...changes, restartNeeded };
    current = { config: next, map: result.map, loadedAt: clock.now(), reloads: current.reloads + 1,
      lastReload: outcome };
    logger.info({ listings: outcome.listings, ...changes, ...(restartNeeded.length > 0 ? { restartNeeded } : {}) },
      'config reloaded');
    if (restartNeeded.length > 0) logger.warn({ keys: restartNeeded }, 'changed keys take effect at the next restart');
    // What was kept of listings and peers removed is forgotten after the swap, in slices; the next reload waits.
    await forgetting;
    return outcome;
  });

  return {
    feeds,
    push: pushed,
    reload,
    server: http.server,
    async listen() {
      const { host, port } = parseListen(config.listen);
      const bound = await http.listen(host, port);
      await replicas.start();
      await resume();
      pushed.start();
      if (store.shared) scheduleRecovery();
      const urlHost = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
      logger.info({ listen: bound, upstream: upstream.origin, store: store.kind }, 'listening');
      return { ...bound, url: `http://${urlHost}:${bound.port}` };
    },
    close() {
      closePromise ??= (async () => {
        clock.clearTimeout(resumeTimer);
        clock.clearTimeout(recoveryTimer);
        feeds.close();
        // SPEC "Guarantees": shutdown finishes within timeouts.shutdown whatever is in flight. Requests
        // get most of it; then background work a moment to finish; then every outbound request is cut.
        const deadline = clock.now() + config.timeouts.shutdown;
        const left = () => Math.max(0, deadline - clock.now());
        const reserveMs = Math.min(2_000, config.timeouts.shutdown / 4);
        const { unfinished } = await http.drain(Math.max(0, config.timeouts.shutdown - reserveMs));
        if (unfinished > 0) logger.warn({ unfinished }, 'shutdown cut in-flight requests');
        // Changes being classified finish first, so their notifications reach the outbox before it closes.
        const background = (async () => {
          await Promise.allSettled([pushed.close(), feeds.settled()]);
          await Promise.allSettled([notifier.close(), hooks.close()]);
        })();
        await within(background, left() / 2);
        await outbound.close();
        await within(background, left());
        await pool.close();
        eventLoopDelay.close();
        recorder.close();
        await upstream.destroy();
        await replicas.close();
        await store.close();
        logger.info({}, 'closed');
      })();
      return closePromise;
    },
  };

  /** Waits for `work`, at most `ms`. */
  async function within(work: Promise<unknown>, ms: number): Promise<void> {
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    await Promise.race([work, new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, ms);
    })]);
    clock.clearTimeout(timer);
  }
}

// A store unreachable at start is asked again this often.
const resumeRetryMs = 2_000;
// With several replicas, how often the journal is looked through for a dead replica's changes.
const recoveryIntervalMs = 5_000;

/** The names of the headers listings send on their own reads (credentials): fetches that differ in them never
 * share. */
function headerNamesOf(config: Config): string[] {
  return [...new Set(Object.values(config.listings).flatMap((listing) => Object.keys(listing.headers)))];
}

/** The heartbeat of this replica: a quarter of the watch interval, within 250 ms and 2 s, so a dead
 * replica's listings are taken over within two intervals (SPEC "Several replicas"). */
function heartbeatFor(watchMs: number): number {
  return watchMs > 0 ? Math.min(2_000, Math.max(250, Math.floor(watchMs / 4))) : 2_000;
}
const targetInvalidBody = `${errorCodes.REQUEST_TARGET_INVALID.text}\n`;
// An Upgrade request has no ServerResponse: its refusal is written on the socket, which then closes.
const targetInvalidUpgradeAnswer = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n'
  + `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(targetInvalidBody)}\r\n\r\n`
  + targetInvalidBody;

/** True for an origin-form request target (RFC 9112 §3.2.1): a path, then maybe a query. */
function isOriginForm(target: string | undefined): boolean {
  return target?.startsWith('/') ?? false;
}

function requestFields(req: IncomingMessage, route: Route, redact: Redactor) {
  return {
    method: req.method,
    url: redact(req.url ?? ''),
    route: route.kind,
    ...(route.kind === 'feed' ? { listing: route.listing } : {}),
    remote: req.socket.remoteAddress,
  };
}
