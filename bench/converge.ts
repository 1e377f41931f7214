// `make bench`: convergence of N Messages for bosun, kopf, controller-runtime and the floor,
// interleaved (A B C D, A B C D, …) on a fresh control plane per run; prints the figures and
// writes bench/results/latest.json and docs/benchmarks.md.
import { parseArgs } from 'node:util';
import { CONTENDERS, runOnce, type ContenderName, type RunResult } from './lib/run.js';
import { summarise, writeReport } from './lib/report.js';

const { values } = parseArgs({
  options: {
    /** Comma-separated N values. */
    n: { type: 'string', default: process.env.FULL === '1' ? '100,1000,5000' : '100,1000' },
    /** Rounds per N (each round runs every contender once). */
    rounds: { type: 'string', default: '3' },
    /** Comma-separated contenders. */
    contenders: { type: 'string', default: CONTENDERS.join(',') },
    /** Skip writing docs and results (a dry run). */
    'no-write': { type: 'boolean', default: false },
  },
});

const ns = values.n.split(',').map(Number);
const rounds = Number(values.rounds);
const contenders = values.contenders.split(',') as ContenderName[];
for (const c of contenders) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender '${c}'; choose from ${CONTENDERS.join(', ')}`);
const command = `node --import tsx bench/converge.ts --n ${values.n} --rounds ${rounds} --contenders ${values.contenders}`;
const log = (l: string) => process.stdout.write(`${l}\n`);

const runs: RunResult[] = [];
const t0 = Date.now();
for (const n of ns) {
  log(`converge n=${n}`);
  for (let round = 1; round <= rounds; round++) {
    for (const c of contenders) runs.push(await runOnce(c, n, round, log));
  }
}
const scenarios = ns.map((n) => summarise(n, runs));
for (const s of scenarios) {
  log(`n=${s.n}: ${contenders.map((c) => `${c} ${(s as unknown as Record<string, number>)[`${c.replace('-', '_')}_s`] ?? '—'} s`).join(', ')}; bosun/floor ${s.ratio_to_floor.bosun ?? '—'}×`);
}
log(`total ${Math.round((Date.now() - t0) / 1000)} s`);
if (!values['no-write']) await writeReport(scenarios, command);
