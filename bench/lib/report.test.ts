import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarise } from './report.js';
import type { ContenderName } from './contenders.js';
import { percentile, type RunResult } from './run.js';

function run(contender: ContenderName, round: number, seconds: number, extra: Partial<RunResult> = {}): RunResult {
  return { contender, n: 1000, round, seconds, clusterCpuSeconds: 10 * round, requestsPerMessage: {}, ...extra };
}

test('ratios to the floors are taken within each round, then the median', () => {
  // Round 2 is twice as slow for everyone: a noisy machine must not move the ratios.
  const runs = [
    run('floor', 1, 10),
    run('floor-running', 1, 16),
    run('bosun', 1, 20, { cpuSeconds: 5, peakRssMiB: 100 }),
    run('floor', 2, 20),
    run('floor-running', 2, 32),
    run('bosun', 2, 30, { cpuSeconds: 7, peakRssMiB: 120 }),
  ];
  const s = summarise(1000, runs);
  assert.equal(s.rounds, 2);
  assert.equal(s.bosun_s, 25);
  assert.equal(s.floor_s, 15);
  // (20/10 + 30/20) / 2, not 25/15.
  assert.equal(s.ratio_to_floor.bosun, 1.75);
  assert.equal(s.ratio_to_floor_running.bosun, Math.round(((20 / 16 + 30 / 32) / 2) * 100) / 100);
  assert.equal(s.ratio_to_floor['floor-running'], 1.6);
  assert.equal(s.ratio_to_floor_running['floor-running'], undefined);
  assert.equal(s.cpu_s.bosun, 6);
  assert.equal(s.cpu_s.floor, undefined);
  assert.equal(s.cluster_cpu_s.floor, 15);
  assert.equal(s.bosun_rss_mib, 110);
});

test("the peers' ratios to bosun are taken within each round too, then the median", () => {
  const runs = [
    run('bosun', 1, 10),
    run('controller-runtime', 1, 25),
    run('bosun', 2, 40),
    run('controller-runtime', 2, 30),
    run('bosun', 3, 20),
    run('controller-runtime', 3, 50),
  ];
  const s = summarise(1000, runs);
  // Per round 2.5, 0.75, 2.5: the median 2.5; the medians' ratio would be 30 / 20 = 1.5.
  assert.equal(s.ratio_to_bosun?.['controller-runtime'], 2.5);
  assert.equal(s.ratio_to_bosun?.bosun, undefined);
});

test('a stream percentile that falls on a never-Ready Message is null, not the latency of the ones that made it', () => {
  assert.equal(percentile([10, 20, 30, Infinity], 50), 30);
  assert.equal(percentile([10, 20, Infinity, Infinity], 50), null);
  assert.equal(percentile([10, 20, 30, Infinity], 99), null);
  assert.equal(percentile([], 50), null);
});
