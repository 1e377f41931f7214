// `make bench`: bosun, kopf, controller-runtime and the floor doing the Message operator's work,
// interleaved (A B C D, A B C D, …) on a fresh control plane per run; prints the figures and
// writes bench/results/latest.json and docs/benchmarks.md.
import { parseArgs } from 'node:util';
import { CONTENDERS, EXTRA_CONTENDERS, type ContenderName } from './lib/contenders.js';
import { abortRuns, runOnce, runRestart, runStream, type RestartResult, type RunResult, type StreamResult } from './lib/run.js';
import { readFileSync } from 'node:fs';
import { summarise, writeReport, type ConvergeScenario } from './lib/report.js';

const full = process.env.FULL === '1';
const { values } = parseArgs({
  options: {
    /** Comma-separated N values for the convergence scenario. */
    n: { type: 'string', default: full ? '100,1000,5000' : '100,1000' },
    /** Rounds (each round runs every contender once). */
    rounds: { type: 'string', default: '3' },
    /** Comma-separated contenders. */
    contenders: { type: 'string', default: CONTENDERS.join(',') },
    /** Comma-separated scenarios: converge, restart, stream. */
    scenarios: { type: 'string', default: full ? 'converge,restart,stream' : 'converge' },
    /** N for the restart scenario, and its rounds. */
    'restart-n': { type: 'string', default: '1000' },
    'restart-rounds': { type: 'string', default: '1' },
    /** Creates per second and seconds for the stream scenario. */
    'stream-rate': { type: 'string', default: '20' },
    'stream-seconds': { type: 'string', default: '60' },
    /** An earlier results file (bench/results/*.json) whose convergence figures for other N join this report. */
    merge: { type: 'string' },
    /** Skip writing docs and results (a dry run). */
    'no-write': { type: 'boolean', default: false },
  },
});

const ns = values.n.split(',').map(Number);
const rounds = Number(values.rounds);
const contenders = values.contenders.split(',') as ContenderName[];
const known: readonly string[] = [...CONTENDERS, ...EXTRA_CONTENDERS];
for (const c of contenders) if (!known.includes(c)) throw new Error(`unknown contender '${c}'; choose from ${known.join(', ')}`);
const scenarios = values.scenarios.split(',');
const command = `node --import tsx bench/converge.ts ${process.argv.slice(2).join(' ')}`.trim() + (full ? '   # FULL=1' : '');
const log = (l: string) => process.stdout.write(`${l}\n`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping contenders and control planes`);
    void abortRuns().finally(() => process.exit(130));
  });
}

/**
 * Seconds per Message each contender took (2026-11-22 medians on 2 cores: at N=1000 for N up to 1000,
 * at N=5000 above), and what a run costs besides (a fresh control plane, the warm-up, the settling
 * second, teardown: 11 s in the 2026-12-01 quick profile): the estimate printed up front.
 */
const SECONDS_PER_MESSAGE: Record<string, [number, number]> = {
  floor: [0.01, 0.012],
  'floor-running': [0.017, 0.019],
  bosun: [0.02, 0.026],
  'bosun-base': [0.02, 0.026],
  'bosun-http1': [0.02, 0.026],
  kopf: [0.045, 0.061],
  'controller-runtime': [0.019, 0.022],
};
const PER_RUN_S = 11;
const perMessage = (c: string, n: number) => (SECONDS_PER_MESSAGE[c] ?? [0.03, 0.03])[n <= 1000 ? 0 : 1];
const operators = contenders.filter((c) => !c.startsWith('floor'));
let estimate = 0;
if (scenarios.includes('converge')) for (const n of ns) for (const c of contenders) estimate += rounds * (PER_RUN_S + perMessage(c, n) * n);
if (scenarios.includes('restart')) {
  const n = Number(values['restart-n']);
  // Converge, settle, restart, then 3 quiet seconds (and up to a few more while the cluster settles).
  for (const c of operators) estimate += Number(values['restart-rounds']) * (PER_RUN_S + perMessage(c, n) * n + 10);
}
if (scenarios.includes('stream')) estimate += rounds * operators.length * (PER_RUN_S + Number(values['stream-seconds']) + 5);
log(
  `about ${Math.round(estimate / 60)} minutes on 2 cores (${contenders.length} contenders, N=${ns.join(',')}, ${rounds} rounds${
    scenarios.length > 1 ? `, ${scenarios.join(' + ')}` : ''
  }; estimated from earlier medians, more on a loaded machine)`,
);

const runs: RunResult[] = [];
const restarts: RestartResult[] = [];
const streams: StreamResult[] = [];
const t0 = Date.now();
const elapsed = () => `${Math.round((Date.now() - t0) / 1000)} s`;
const carried: ConvergeScenario[] = [];
if (values.merge) {
  const earlier = JSON.parse(readFileSync(values.merge, 'utf8')) as {
    date: string;
    commit: string;
    command: string;
    scenarios: { name: string; n?: number }[];
  };
  for (const sc of earlier.scenarios) {
    if (sc.name === 'converge' && !ns.includes(sc.n!))
      carried.push({
        ...(sc as ConvergeScenario),
        from: (sc as ConvergeScenario).from ?? { date: earlier.date, commit: earlier.commit, command: earlier.command },
      });
  }
}
const summaries = () => [...carried, ...[...new Set(runs.map((r) => r.n))].map((n) => summarise(n, runs))].sort((a, b) => a.n - b.n);
// The report is rewritten after every stage, so a long run that fails late keeps what it measured.
const save = async () => {
  if (!values['no-write']) await writeReport(summaries(), restarts, streams, command, new Date(t0));
};
if (scenarios.includes('converge')) {
  for (const n of ns) {
    log(`converge n=${n} (at ${elapsed()})`);
    for (let round = 1; round <= rounds; round++) for (const c of contenders) runs.push(await runOnce(c, n, round, log));
    await save();
  }
}
if (scenarios.includes('restart')) {
  const n = Number(values['restart-n']);
  log(`restart n=${n} (at ${elapsed()})`);
  for (let round = 1; round <= Number(values['restart-rounds']); round++)
    for (const c of contenders.filter((x) => !x.startsWith('floor'))) restarts.push(await runRestart(c, n, round, log));
  await save();
}
if (scenarios.includes('stream')) {
  const rate = Number(values['stream-rate']);
  const secs = Number(values['stream-seconds']);
  log(`stream ${rate}/s for ${secs} s (at ${elapsed()})`);
  for (let round = 1; round <= rounds; round++)
    for (const c of contenders.filter((x) => !x.startsWith('floor'))) streams.push(await runStream(c, rate, secs, round, log));
  await save();
}
for (const s of summaries()) {
  log(
    `n=${s.n}: ${contenders.map((c) => `${c} ${(s as unknown as Record<string, number>)[`${c.replace('-', '_')}_s`] ?? '—'} s`).join(', ')}; bosun/floor ${s.ratio_to_floor.bosun ?? '—'}×, bosun/floor-running ${s.ratio_to_floor_running.bosun ?? '—'}×`,
  );
}
log(`total ${elapsed()}`);
