import assert from 'node:assert/strict';
import { test } from 'node:test';
import { histogramDelta, histogramQuantile, HistogramParseError, readHistogram, shareAtOrBelow } from './webhook-metrics.js';

const M = 'apiserver_admission_webhook_admission_duration_seconds';
const BOUNDS = ['0.005', '0.025', '0.1', '0.5', '1', '2.5', '10', '25', '+Inf'];

/** One series of the metric in exposition format, counts cumulative per bound. */
function series(labels: string, counts: number[], sum: number): string {
  const lines = BOUNDS.map((le, i) => `${M}_bucket{${labels},le="${le}"} ${counts[i]}`);
  lines.push(`${M}_sum{${labels}} ${sum}`, `${M}_count{${labels}} ${counts[counts.length - 1]}`);
  return lines.join('\n');
}

const A = 'name="a.widgets.x.dev",operation="CREATE",rejected="false",type="validating"';
const A_REJ = 'name="a.widgets.x.dev",operation="CREATE",rejected="true",type="validating"';
const B = 'name="b.widgets.x.dev",operation="CREATE",rejected="false",type="validating"';

test('readHistogram sums the series of one webhook name and leaves out other webhooks', () => {
  const text = [
    `# HELP ${M} latency`,
    series(A, [3, 6, 7, 7, 7, 7, 7, 7, 7], 0.08),
    series(A_REJ, [1, 2, 2, 2, 2, 2, 2, 2, 2], 0.02),
    series(B, [100, 100, 100, 100, 100, 100, 100, 100, 100], 0.1),
  ].join('\n');
  const h = readHistogram(text, M, { name: 'a.widgets.x.dev' });
  assert.deepEqual(h.counts, [4, 8, 9, 9, 9, 9, 9, 9, 9]);
  assert.equal(h.bounds[0], 0.005);
  assert.equal(h.bounds[h.bounds.length - 1], Infinity);
  assert.equal(h.count, 9);
  assert.ok(Math.abs(h.sum - 0.1) < 1e-12);
  assert.equal(readHistogram(text, M, { name: 'none' }).count, 0);
});

test('histogramDelta subtracts an earlier reading and refuses a counter that went down', () => {
  const before = readHistogram(series(A, [3, 6, 7, 7, 7, 7, 7, 7, 7], 0.08), M, {});
  const after = readHistogram(series(A, [13, 26, 27, 27, 27, 27, 27, 27, 27], 0.28), M, {});
  const d = histogramDelta(before, after);
  assert.deepEqual(d.counts, [10, 20, 20, 20, 20, 20, 20, 20, 20]);
  assert.equal(d.count, 20);
  assert.throws(() => histogramDelta(after, before), HistogramParseError);
  assert.deepEqual(histogramDelta(readHistogram('', M, {}), after), after);
});

test('histogramQuantile interpolates inside the bucket as Prometheus does', () => {
  // 10 observations ≤ 5 ms, 10 more in (5, 25] ms: rank 10 (p50) ends the first bucket; rank 19.8 (p99)
  // is 9.8 of 10 into the second: 5 + 20 × 0.98 = 24.6 ms.
  const h = readHistogram(series(A, [10, 20, 20, 20, 20, 20, 20, 20, 20], 0), M, {});
  assert.ok(Math.abs(histogramQuantile(0.5, h) - 0.005) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.99, h) - 0.0246) < 1e-12);
  // The first bucket starts at 0: p25 is halfway through it.
  assert.ok(Math.abs(histogramQuantile(0.25, h) - 0.0025) < 1e-12);
  assert.equal(shareAtOrBelow(h, 0.005), 0.5);
});

test('histogramQuantile gives the largest finite bound for a rank in +Inf, NaN when empty', () => {
  const h = readHistogram(series(A, [0, 0, 0, 0, 0, 0, 0, 0, 4], 200), M, {});
  assert.equal(histogramQuantile(0.5, h), 25);
  assert.ok(Number.isNaN(histogramQuantile(0.5, readHistogram(series(A, [0, 0, 0, 0, 0, 0, 0, 0, 0], 0), M, {}))));
});
