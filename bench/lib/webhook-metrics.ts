// The API server's admission webhook histogram, read from its /metrics text: the buckets of one webhook
// summed over its other labels, the difference between two readings, and quantiles computed the way
// Prometheus' histogram_quantile computes them (linear interpolation inside the bucket the rank falls in).

/** A cumulative histogram: bucket upper bounds (ascending, the last +Inf) with their counts, and the sum. */
export interface Histogram {
  /** Upper bounds `le`, ascending, ending with Infinity. */
  bounds: number[];
  /** Cumulative counts, one per bound. */
  counts: number[];
  /** Sum of all observations. */
  sum: number;
  /** Number of observations. */
  count: number;
}

/** A histogram series in the text could not be read as one: the message names the metric and the line. */
export class HistogramParseError extends Error {
  override name = 'HistogramParseError';
}

function labelsOf(line: string): Record<string, string> {
  const open = line.indexOf('{');
  const close = line.lastIndexOf('}');
  if (open < 0 || close < open) return {};
  return Object.fromEntries([...line.slice(open + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
}

function valueOf(line: string): number {
  const v = line.slice(line.lastIndexOf(' ') + 1);
  return v === '+Inf' ? Infinity : Number(v);
}

/**
 * The histogram `metric` from Prometheus text exposition, summed over every series whose labels include
 * `match` (e.g. `{ name: '<webhook>' }` sums operations, rejected and type). An empty histogram (no
 * series matched) has no bounds and count 0.
 */
export function readHistogram(text: string, metric: string, match: Record<string, string>): Histogram {
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  const matches = (labels: Record<string, string>) => Object.entries(match).every(([k, v]) => labels[k] === v);
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    const labels = labelsOf(line);
    if (!matches(labels)) continue;
    if (rest.startsWith('_bucket{')) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      if (labels.le === undefined || Number.isNaN(le)) throw new HistogramParseError(`${metric}: a bucket without a numeric le: ${line}`);
      buckets.set(le, (buckets.get(le) ?? 0) + valueOf(line));
    } else if (rest.startsWith('_sum')) sum += valueOf(line);
    else if (rest.startsWith('_count')) count += valueOf(line);
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  if (bounds.length > 0 && bounds[bounds.length - 1] !== Infinity)
    throw new HistogramParseError(`${metric}: no +Inf bucket among the series matching ${JSON.stringify(match)}`);
  return { bounds, counts: bounds.map((b) => buckets.get(b)!), sum, count };
}

/**
 * `after - before`: the observations made between two readings. A webhook first seen in `after` has an
 * empty `before`; a histogram whose bounds changed between readings (a restarted API server) is refused.
 */
export function histogramDelta(before: Histogram, after: Histogram): Histogram {
  if (before.bounds.length === 0) return after;
  if (before.bounds.length !== after.bounds.length || before.bounds.some((b, i) => b !== after.bounds[i]))
    throw new HistogramParseError(
      `the histogram's buckets changed between readings (${before.bounds.join(',')} → ${after.bounds.join(',')})`,
    );
  const counts = after.counts.map((c, i) => c - before.counts[i]!);
  if (counts.some((c) => c < 0) || after.count < before.count)
    throw new HistogramParseError('a histogram count went down between readings: the API server restarted; measure again');
  return { bounds: after.bounds, counts, sum: after.sum - before.sum, count: after.count - before.count };
}

/**
 * The q-quantile (0 ≤ q ≤ 1) as Prometheus' histogram_quantile computes it: the bucket the rank q·count
 * falls in, and linear interpolation between its lower bound (the previous bound, or 0 for the first
 * bucket) and its upper bound. A rank in the +Inf bucket gives the largest finite bound. NaN when the
 * histogram is empty.
 */
export function histogramQuantile(q: number, h: Histogram): number {
  const total = h.counts[h.counts.length - 1] ?? 0;
  if (h.bounds.length < 2 || total === 0) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const rank = q * total;
  let i = h.counts.findIndex((c) => c >= rank);
  if (i < 0) i = h.counts.length - 1;
  if (i === h.bounds.length - 1) return h.bounds[h.bounds.length - 2]!;
  // Prometheus' first bucket starts at 0 when its upper bound is positive.
  if (i === 0 && h.bounds[0]! <= 0) return h.bounds[0]!;
  const lower = i === 0 ? 0 : h.bounds[i - 1]!;
  const upper = h.bounds[i]!;
  const below = i === 0 ? 0 : h.counts[i - 1]!;
  const inBucket = h.counts[i]! - below;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/** The share of observations at or below `bound` (which must be one of the histogram's bounds); NaN when empty. */
export function shareAtOrBelow(h: Histogram, bound: number): number {
  const i = h.bounds.indexOf(bound);
  if (i < 0) throw new HistogramParseError(`${bound} is not a bucket bound of this histogram (${h.bounds.join(', ')})`);
  const total = h.counts[h.counts.length - 1] ?? 0;
  return total === 0 ? NaN : h.counts[i]! / total;
}
