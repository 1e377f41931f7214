// What `import 'bosun'` costs a process: wall time and peak RSS of a fresh Node that imports one entry module and
// exits, for two builds side by side (this checkout's and another's, e.g. the commit before a change), interleaved
// per round so the machine's noise falls on both alike. Prints medians and a markdown row per build.
//
//   node --import tsx bench/import.ts --base <dir of another checkout, built> [--rounds 15]
//
// The base's entry is found as its package.json `exports['.']` says (the root package before the workspace
// layout, packages/bosun after it).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';

const run = promisify(execFile);
const { values } = parseArgs({ options: { base: { type: 'string' }, rounds: { type: 'string', default: '15' } } });
const rounds = Number(values.rounds);

/** The compiled entry module of the bosun package at `dir` (a checkout, built). */
function entryOf(dir: string): string {
  for (const pkgDir of [join(dir, 'packages', 'bosun'), dir]) {
    const file = join(pkgDir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; exports?: Record<string, string | { default: string }> };
    const dot = pkg.name === 'bosun' ? pkg.exports?.['.'] : undefined;
    const rel = typeof dot === 'string' ? dot : dot?.default;
    if (rel) return resolve(pkgDir, rel);
  }
  throw new Error(`no built bosun package in ${dir}: build it first (make build)`);
}

// The child reports its own peak RSS (VmHWM) after the import, and the import's wall time.
const CHILD = `const t0 = performance.now(); await import(process.argv[1]); const ms = performance.now() - t0;
const hwm = Number(/VmHWM:\\s+(\\d+)/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1]);
console.log(JSON.stringify({ ms, rssMiB: hwm / 1024 }));`;

async function once(entry: string): Promise<{ ms: number; rssMiB: number }> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD, entry]);
  return JSON.parse(stdout) as { ms: number; rssMiB: number };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const builds: Record<string, string> = { this: entryOf(resolve('.')) };
if (values.base) builds.base = entryOf(resolve(values.base));
builds.node = 'node:os'; // a built-in: what starting Node and importing nothing of ours costs
const samples = new Map<string, { ms: number; rssMiB: number }[]>(Object.keys(builds).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  const order = Object.keys(builds);
  if (r % 2) order.reverse();
  for (const name of order) samples.get(name)!.push(await once(builds[name]!));
}
console.log(`${rounds} rounds, interleaved; medians`);
console.log('| build | entry | import time | peak RSS |\n|---|---|---|---|');
for (const [name, s] of samples) {
  console.log(
    `| ${name} | \`${builds[name]}\` | ${median(s.map((x) => x.ms)).toFixed(1)} ms | ${median(s.map((x) => x.rssMiB)).toFixed(1)} MiB |`,
  );
}
