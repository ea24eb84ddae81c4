// The feed engine's metrics (SPEC "Admin"): upstream reads by outcome, answers by variant and kind,
// bytes the sidecar saved its clients, held answers and drops, and compressions. Series are resolved once, here.
import type { Compression } from '../http/compress.ts';
import type { Registry } from '../metrics/registry.ts';
import type { HeldDropCounts } from './engine.ts';

/** How a feed request was answered (the `answer` label). */
export type FeedAnswer = 'full' | 'delta' | 'not_modified' | 'conflict' | 'passthrough' | 'error';

/** Which protocol the client spoke (the `variant` label). */
export type FeedVariant = 'plain' | 'enhanced' | 'minimal' | 'head' | 'options';

/** What an upstream feed read came to (the `outcome` label). */
export type ReadOutcome =
  | 'unchanged' | 'changed' | 'held' | 'superseded' | 'not_calendar' | 'failed' | 'too_large' | 'store_error'
  | 'unversioned' | 'too_complex' | 'busy' | 'replica_conflict' | 'not_modified';

const variants = ['plain', 'enhanced', 'minimal', 'head', 'options'] as const satisfies readonly FeedVariant[];
const answers = ['full', 'delta', 'not_modified', 'conflict', 'passthrough', 'error'] as const satisfies readonly FeedAnswer[];
const outcomes = [
  'unchanged', 'changed', 'held', 'superseded', 'not_calendar', 'failed', 'too_large', 'store_error',
  'unversioned', 'too_complex', 'busy', 'replica_conflict', 'not_modified',
] as const satisfies readonly ReadOutcome[];

/** Records what the feed engine did. */
export type FeedMetrics = {
  /** One upstream read of a feed and what it did to the snapshot. */
  read(outcome: ReadOutcome): void;
  /** One feed request answered; `savedBytes` is the upstream body size minus what was sent. */
  answer(variant: FeedVariant, answer: FeedAnswer, savedBytes?: number): void;
  /** Entities that came back under new UIDs and were matched by content. */
  rekeyed(count: number): void;
  /** One answer body compressed (a kept encoding served again is not one). */
  compressed(coding: Compression): void;
};

/** Registers the feed metrics on `registry`. */
export function createFeedMetrics(registry: Registry): FeedMetrics {
  const reads = registry.counter(
    'icalpush_feed_upstream_reads_total',
    'Upstream feed reads, by what they did to the snapshot (held: a sudden drop kept back).',
    ['outcome'],
  );
  const answered = registry.counter(
    'icalpush_feed_answers_total',
    'Feed requests answered, by protocol variant and answer (not_modified is a 304, conflict a 409).',
    ['variant', 'answer'],
  );
  const saved = registry.counter(
    'icalpush_feed_bytes_saved_total',
    'Body bytes not sent thanks to 304s and deltas, against the upstream\'s full answer.',
  );
  const rekeys = registry.counter(
    'icalpush_feed_rekeyed_entities_total',
    'Entities an exporter sent under a new UID with unchanged content, kept under their old identity.',
  );
  const compressions = registry.counter(
    'icalpush_feed_compressions_total',
    'Feed answer bodies compressed, by content coding; an encoding kept from an earlier answer is not counted.',
    ['encoding'],
  );
  const readSeries = new Map(outcomes.map((o) => [o, reads.labels(o)]));
  const answerSeries = new Map(variants.flatMap((v) => answers.map((a) => [`${v} ${a}`, answered.labels(v, a)])));
  const savedSeries = saved.labels();
  const rekeySeries = rekeys.labels();
  const compressionSeries = { br: compressions.labels('br'), gzip: compressions.labels('gzip') };
  return {
    read: (outcome) => readSeries.get(outcome)?.inc(),
    answer(variant, answer, savedBytes) {
      answerSeries.get(`${variant} ${answer}`)?.inc();
      if (savedBytes !== undefined && savedBytes > 0) savedSeries.inc(savedBytes);
    },
    rekeyed: (count) => rekeySeries.inc(count),
    compressed: (coding) => compressionSeries[coding].inc(),
  };
}

/** The name of the held-drops gauge. */
export const heldDropsMetricName = 'icalpush_feed_held_drops';

/** Registers `icalpush_feed_held_drops{state}` (`within_span`, `past_span`), sampling `held` at each scrape. A drop
 * is decided at the feed's next read, so one past its span means nothing has read the feed since (SPEC
 * "Guarantees": a drop is applied once it persisted for the span). */
export function registerHeldDropsGauge(registry: Registry, held: () => HeldDropCounts): void {
  registry.gauge(heldDropsMetricName,
    'Sudden feed drops being held, as this replica last saved them, by state: within_span, past_span (the span '
    + 'ran out and no read has applied or discarded the drop yet).', ['state'], (gauge) => {
      const { withinSpan, pastSpan } = held();
      gauge.labels('within_span').set(withinSpan);
      gauge.labels('past_span').set(pastSpan);
    });
}
