// The watch (SPEC "Push": detecting primary changes; the watch must not cost the platform more than its
// polling): every listing's own feed re-read, those with recent activity every `interval`, the others every
// `idleInterval`, never more than a budget of reads per second, the listings spread over their interval, a
// bounded number of reads at once (each holding its slot only until it ends, its deadline at the latest),
// backing off while the upstream errs. A listing whose feed anyone read within its interval is not re-read.
// When the budget is short, the most overdue go first, active listings before idle ones.
import type { Clock, Timer } from '../clock.ts';
import { createDueHeap, type DueHeap } from '../util/due-heap.ts';
import type { ListingPlan } from './plans.ts';

/** What one watch read came to: a calendar read, a 304 (the snapshot is current), or a failure. */
export type WatchReadOutcome = 'read' | 'not-modified' | 'failed';

/** What the watch did with a listing whose slot came (the `reason` of icalpush_watch_reads_total): read it
 * as an `active` or an `idle` listing, skipped it because its feed was read within its interval, and, of
 * the reads, those the upstream answered `not-modified`. */
export type WatchReason = 'active' | 'idle' | 'skipped-recently-read' | 'not-modified';

/** Options for createWatch. */
export type WatchOptions = {
  /** The connection map, read at every tick: when the map object changes, listings that stay keep their
   * slot and state, new ones get a slot spread over their interval, removed ones are no longer read. */
  plans: () => ReadonlyMap<string, ListingPlan>;
  clock: Clock;
  /** How often a listing with recent activity is read, in ms; 0 turns the watch off. */
  intervalMs: number;
  /** How often, at most, a listing without recent activity is read; default intervalMs (a flat watch). */
  idleIntervalMs?: number;
  /** Reads per second across the fleet, at most; default unbounded. */
  maxRatePerSecond?: number;
  /** Live replicas sharing the budget (each reads its share of the listings); default 1. */
  replicas?: () => number;
  /** Reads under way at once. */
  concurrency: number;
  /** True when the listing had recent activity; by default every listing has (a flat watch). */
  isActive?(plan: ListingPlan): boolean;
  /** When the listing's own feed was last read by anyone (a client's GET, a re-read), if known. */
  lastReadAt?(plan: ListingPlan): number | undefined;
  /** Reads the listing's own feed. Never rejects. */
  read(plan: ListingPlan): Promise<WatchReadOutcome>;
  /** Whether the listing is in this replica's share of the fleet's (SPEC "Several replicas"); one that is not
   * keeps its place, costing neither budget nor a store round trip. All are, by default. */
  isMine?(plan: ListingPlan): boolean;
  /**
   * Whether this replica reads `plan` in this slot (SPEC "Several replicas": each listing once per interval
   * across the fleet), holding it for `periodMs`; a slot not taken comes again a period later and costs no
   * budget. Always, by default. Never rejects.
   */
  mayRead?(plan: ListingPlan, periodMs: number): Promise<boolean>;
  /** Told of every read started, slot skipped and 304 (metrics). */
  onRead?(reason: WatchReason): void;
};

/** What the watch is doing, for metrics. */
export type WatchStats = {
  listings: number;
  /** Listings with recent activity. */
  active: number;
  /** Listings past their due time by more than a tick, not being read. */
  overdue: number;
  /** This replica's budget in reads per second (Infinity: unbounded); 0 when the watch is off. */
  budgetPerSecond: number;
};

/** The watch. */
export type Watch = {
  start(): void;
  /** The listing had activity now: an idle one waits for its active interval from now on, not its idle one. */
  touched(id: string): void;
  stats(): WatchStats;
  /** Stops the schedule; resolves once the reads under way ended. */
  close(): Promise<void>;
};

type Place = 'waiting' | 'due' | 'idle' | 'reading';

type Slot = {
  id: string;
  /** The time the listing's period is counted from: the planned time of its last read. */
  base: number;
  failures: number;
  /** When the watch's own last read of it ended: reads up to then are its own, not someone else's. */
  readEndedAt: number;
  place: Place;
  /** The due time of the slot's live item in its heap; items that differ were left behind. */
  heapAt: number;
};

// Doubling per failure, up to 16 times the interval.
const maxFailures = 4;

/** Creates the watch; nothing happens before start(). */
export function createWatch(options: WatchOptions): Watch {
  const { clock, intervalMs, concurrency } = options;
  const idleMs = Math.max(intervalMs, options.idleIntervalMs ?? intervalMs);
  const adaptive = idleMs > intervalMs;
  const maxRate = options.maxRatePerSecond ?? Infinity;
  const isActive = options.isActive ?? (() => true);
  const slots = new Map<string, Slot>();
  // waiting: keyed by the earliest the slot can be due (its active period); due: active listings past it,
  // most overdue first; idle: idle listings, keyed by their idle due time.
  const heaps: Record<'waiting' | 'due' | 'idle', DueHeap> = {
    waiting: createDueHeap(), due: createDueHeap(), idle: createDueHeap(),
  };
  const reads = new Set<Promise<void>>();
  let map: ReadonlyMap<string, ListingPlan> | undefined;
  let timer: Timer | undefined;
  let closed = false;
  let started = false;
  let tokens = 0;
  let refilledAt = 0;
  let tickMs = 1_000;
  let promotedAt = 0;
  // Activity this process sees moves a listing at once (touched); the pass finds the rest (a change the store
  // knew from before a restart, seen at the feed's next read by anyone).
  const promoteEveryMs = Math.min(300_000, Math.max(1_000, Math.floor(idleMs / 4)));

  const budget = () => maxRate / Math.max(1, options.replicas?.() ?? 1);
  const periodOf = (slot: Slot, active: boolean) => (active ? intervalMs : idleMs) * 2 ** slot.failures;
  const planOf = (slot: Slot) => map?.get(slot.id);

  function place(slot: Slot, where: 'waiting' | 'due' | 'idle', at: number): void {
    slot.place = where;
    slot.heapAt = at;
    heaps[where].push(at, slot.id);
  }

  /** Waits for the earliest moment the slot can be due: a period as if active from its base. */
  const wait = (slot: Slot) => place(slot, 'waiting', slot.base + periodOf(slot, true));

  /** The map changed: keep the slots of listings that stay, add new ones spread over their period. */
  function reconcile(next: ReadonlyMap<string, ListingPlan>, now: number): void {
    map = next;
    for (const id of slots.keys()) if (!next.has(id)) slots.delete(id);
    const added = [...next.values()].filter((plan) => !slots.has(plan.id));
    added.forEach((plan, i) => {
      const period = isActive(plan) ? intervalMs : idleMs;
      const dueAt = now + Math.floor((period * i) / added.length);
      const slot: Slot = { id: plan.id, base: dueAt - period, failures: 0, readEndedAt: Number.NEGATIVE_INFINITY,
        place: 'waiting', heapAt: 0 };
      slots.set(plan.id, slot);
      wait(slot);
    });
    // Items of removed listings are left behind in the heaps; past twice the live ones, they are rebuilt.
    const held = heaps.waiting.size() + heaps.due.size() + heaps.idle.size();
    if (held > 2 * slots.size + 64) rebuild();
    tickMs = tickFor(slots.size);
  }

  function rebuild(): void {
    heaps.waiting = createDueHeap();
    heaps.due = createDueHeap();
    heaps.idle = createDueHeap();
    for (const slot of slots.values()) if (slot.place !== 'reading') place(slot, slot.place, slot.heapAt);
  }

  /** Live item of `where` at its top, or undefined; drops items left behind. */
  function top(where: 'waiting' | 'due' | 'idle'): Slot | undefined {
    const heap = heaps[where];
    for (let item = heap.peek(); item; item = heap.peek()) {
      const slot = slots.get(item.key);
      if (slot && slot.place === where && slot.heapAt === item.dueAt) return slot;
      heap.pop();
    }
    return undefined;
  }

  /** Moves the slots whose earliest due time came into `due` (active) or `idle`. */
  function sortDue(now: number): void {
    for (let slot = top('waiting'); slot && slot.heapAt <= now; slot = top('waiting')) {
      heaps.waiting.pop();
      const plan = planOf(slot);
      if (!plan) continue;
      if (isActive(plan)) place(slot, 'due', slot.heapAt);
      else place(slot, 'idle', slot.base + periodOf(slot, false));
    }
  }

  /** An idle listing that became active waits for its active period from now on. */
  function promoteOne(slot: Slot): void {
    const plan = slot.place === 'idle' ? planOf(slot) : undefined;
    if (plan && isActive(plan)) wait(slot);
  }

  /** Idle listings that became active unseen by touched() wait for their active period from now on. */
  function promote(): void {
    for (const slot of slots.values()) promoteOne(slot);
  }

  /** The next listing to read now: the most overdue active one, else the most overdue idle one. */
  function next(now: number): { slot: Slot; plan: ListingPlan; active: boolean; dueAt: number } | undefined {
    for (const where of ['due', 'idle'] as const) {
      for (let slot = top(where); slot && slot.heapAt <= now; slot = top(where)) {
        heaps[where].pop();
        const plan = planOf(slot);
        if (!plan) continue;
        const active = isActive(plan);
        if (active !== (where === 'due')) {
          // Its activity changed since it was sorted.
          if (active) wait(slot);
          else place(slot, 'idle', slot.base + periodOf(slot, false));
          continue;
        }
        if (options.isMine && !options.isMine(plan)) {
          // Another replica's share: its slot comes again a period later, in its place in the spread.
          slot.base += periodOf(slot, active);
          wait(slot);
          continue;
        }
        const readAt = readByOthersAt(slot, plan);
        if (readAt !== undefined && readAt + periodOf(slot, active) > now) {
          // Read by someone else (a client's GET, a re-read) within its period: not read again before that
          // read's period is over.
          slot.base = readAt;
          options.onRead?.('skipped-recently-read');
          wait(slot);
          continue;
        }
        const dueAt = Math.max(slot.base, readAt ?? slot.base) + periodOf(slot, active);
        // Read by someone else since it was sorted, not within its period: due later than it was sorted by.
        if (dueAt > slot.heapAt) {
          place(slot, where, dueAt);
          continue;
        }
        return { slot, plan, active, dueAt };
      }
    }
    return undefined;
  }

  /** When someone else (a client's GET, a re-read) last read the listing, after the watch's own last read. */
  function readByOthersAt(slot: Slot, plan: ListingPlan): number | undefined {
    const readAt = options.lastReadAt?.(plan);
    return readAt !== undefined && readAt > slot.readEndedAt && readAt > slot.base ? readAt : undefined;
  }

  function read(slot: Slot, plan: ListingPlan, active: boolean, dueAt: number, now: number): void {
    slot.place = 'reading';
    tokens -= 1;
    const periodMs = active ? intervalMs : idleMs;
    const may = options.mayRead ? options.mayRead(plan, periodMs).catch(() => true) : Promise.resolve(true);
    const reading: Promise<void> = may
      .then((mine): Promise<WatchReadOutcome | 'skipped'> => {
        if (!mine) return Promise.resolve('skipped');
        options.onRead?.(active ? 'active' : 'idle');
        return options.read(plan).catch((): WatchReadOutcome => 'failed');
      })
      .then((outcome) => {
        if (outcome === 'skipped') {
          // Another replica's: no budget spent, and the listing keeps its place in the spread.
          tokens = Math.min(capacity(), tokens + 1);
        } else {
          if (outcome === 'not-modified') options.onRead?.('not-modified');
          // Back off while the upstream errs: the period doubles per failure, up to 16 times.
          slot.failures = outcome === 'failed' ? Math.min(slot.failures + 1, maxFailures) : 0;
        }
        // From the planned time when the read started on time, so the listing keeps its place in the spread
        // and the interval does not stretch by the tick; from the start when the budget held it back.
        slot.base = now - dueAt <= 2 * tickMs ? dueAt : now;
        slot.readEndedAt = clock.now();
      })
      .finally(() => {
        reads.delete(reading);
        // A listing removed from the map meanwhile is not read again; an idle one waits for its idle period
        // (the promotion pass moves it if it becomes active meanwhile).
        if (slots.get(slot.id) !== slot || closed) return;
        if (!adaptive || isActive(plan)) wait(slot);
        else place(slot, 'idle', slot.base + periodOf(slot, false));
      });
    reads.add(reading);
  }

  /** Tokens the budget holds at most: one tick's worth (at least one read), and one more, so a fraction left
   * over by a tick is not lost to the cap. Over any window w the reads are at most budget × w + that. */
  const capacity = () => Math.max(1, (budget() * tickMs) / 1000) + 1;

  function tick(): void {
    const now = clock.now();
    const current = options.plans();
    if (current !== map) reconcile(current, now);
    const rate = budget();
    tokens = Number.isFinite(rate) ? Math.min(capacity(), tokens + (rate * (now - refilledAt)) / 1000) : Infinity;
    refilledAt = now;
    sortDue(now);
    if (adaptive && now - promotedAt >= promoteEveryMs) {
      promotedAt = now;
      promote();
      sortDue(now);
    }
    while (!closed && reads.size < concurrency && tokens >= 1) {
      const chosen = next(now);
      if (!chosen) break;
      read(chosen.slot, chosen.plan, chosen.active, chosen.dueAt, now);
    }
  }

  /** Ticks fine enough to spread the listings over the interval, and no finer than the budget needs. */
  function tickFor(listings: number): number {
    const spreadMs = intervalMs / Math.max(1, listings);
    const tokenMs = 1000 / budget();
    return Math.max(50, Math.min(1_000, Math.floor(Math.max(spreadMs, tokenMs))));
  }

  function schedule(): void {
    timer = clock.setTimeout(() => {
      if (closed) return;
      tick();
      schedule();
    }, tickMs);
  }

  return {
    start() {
      if (intervalMs <= 0 || closed || started) return;
      started = true;
      const now = clock.now();
      refilledAt = now;
      promotedAt = now;
      reconcile(options.plans(), now);
      tokens = capacity();
      schedule();
    },
    touched(id) {
      if (!adaptive || closed) return;
      const slot = slots.get(id);
      if (slot) promoteOne(slot);
    },
    stats() {
      if (!started) return { listings: 0, active: 0, overdue: 0, budgetPerSecond: 0 };
      const now = clock.now();
      let active = 0;
      let overdue = 0;
      for (const slot of slots.values()) {
        const plan = planOf(slot);
        if (!plan) continue;
        const isOn = isActive(plan);
        if (isOn) active += 1;
        const readAt = readByOthersAt(slot, plan) ?? slot.base;
        if (slot.place !== 'reading' && readAt + periodOf(slot, isOn) < now - tickMs) overdue += 1;
      }
      return { listings: slots.size, active, overdue, budgetPerSecond: budget() };
    },
    async close() {
      closed = true;
      clock.clearTimeout(timer);
      // Reads under way end by their deadline, or at once when the app aborts its outbound requests.
      await Promise.allSettled([...reads]);
    },
  };
}
