// Turns run results into bench/results/latest.json (kept dated too), a table in docs/benchmarks.md
// and a PNG chart of convergence time against N.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { CONTENDERS, type ContenderName } from './contenders.js';
import type { RestartResult, RunResult, StreamResult } from './run.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BEGIN = '<!-- converge:begin (written by bench/converge.ts) -->';
const END = '<!-- converge:end -->';

/** The median of a list of numbers (undefined for an empty list). */
export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

/** One scenario's summary, in the shape of bench/results/latest.json. */
export interface ConvergeScenario {
  name: 'converge';
  n: number;
  rounds: number;
  floor_s?: number;
  floor_running_s?: number;
  bosun_s?: number;
  kopf_s?: number;
  controller_runtime_s?: number;
  bosun_rss_mib?: number;
  kopf_rss_mib?: number;
  controller_runtime_rss_mib?: number;
  /** CPU seconds of each contender's process during the run, median over rounds. */
  cpu_s: Partial<Record<ContenderName, number>>;
  /** CPU seconds of the control plane during each contender's run, median over rounds. */
  cluster_cpu_s: Partial<Record<ContenderName, number>>;
  /** Medians over rounds of the per-round ratio contender/floor. */
  ratio_to_floor: Partial<Record<ContenderName, number>>;
  /** Medians over rounds of the per-round ratio contender/floor-running. */
  ratio_to_floor_running: Partial<Record<ContenderName, number>>;
  /** Medians over rounds of the per-round ratio contender/bosun (how many times bosun's time a peer took). */
  ratio_to_bosun?: Partial<Record<ContenderName, number>>;
  /** API requests per Message by verb and resource, median over rounds. */
  requests: Partial<Record<ContenderName, Record<string, number>>>;
  /** Set when this N was measured by an earlier invocation and carried over with --merge. */
  from?: { date: string; commit: string; command: string };
}

const field = (c: ContenderName) => c.replace('-', '_');

/** Summarises the runs of one N: medians over rounds, ratios against the floor within each round. */
export function summarise(n: number, runs: RunResult[]): ConvergeScenario {
  const of = (c: ContenderName) => runs.filter((r) => r.contender === c && r.n === n);
  const s: ConvergeScenario = {
    name: 'converge',
    n,
    rounds: Math.max(...CONTENDERS.map((c) => of(c).length)),
    cpu_s: {},
    cluster_cpu_s: {},
    ratio_to_floor: {},
    ratio_to_floor_running: {},
    ratio_to_bosun: {},
    requests: {},
  };
  const ratiosTo = (base: ContenderName, rs: RunResult[]) =>
    rs
      .map((r) => {
        const b = of(base).find((f) => f.round === r.round);
        return b ? r.seconds / b.seconds : undefined;
      })
      .filter((x): x is number => x !== undefined);
  const rec = s as unknown as Record<string, unknown>;
  for (const c of CONTENDERS) {
    const rs = of(c);
    if (rs.length === 0) continue;
    rec[`${field(c)}_s`] = round(median(rs.map((r) => r.seconds)));
    const rss = rs.map((r) => r.peakRssMiB).filter((x): x is number => x !== undefined);
    if (rss.length) rec[`${field(c)}_rss_mib`] = round(median(rss));
    const cpu = rs.map((r) => r.cpuSeconds).filter((x): x is number => x !== undefined);
    if (cpu.length) s.cpu_s[c] = round(median(cpu));
    s.cluster_cpu_s[c] = round(median(rs.map((r) => r.clusterCpuSeconds)));
    const toFloor = ratiosTo('floor', rs);
    if (toFloor.length && c !== 'floor') s.ratio_to_floor[c] = round(median(toFloor));
    const toRunning = ratiosTo('floor-running', rs);
    if (toRunning.length && !c.startsWith('floor')) s.ratio_to_floor_running[c] = round(median(toRunning));
    const toBosun = ratiosTo('bosun', rs);
    if (toBosun.length && c !== 'bosun' && !c.startsWith('floor')) s.ratio_to_bosun![c] = round(median(toBosun));
    const keys = new Set(rs.flatMap((r) => Object.keys(r.requestsPerMessage)));
    s.requests[c] = Object.fromEntries([...keys].sort().map((k) => [k, round(median(rs.map((r) => r.requestsPerMessage[k] ?? 0)))!]));
  }
  return s;
}

/** The median where null means "never": nulls sort last, and a median that lands on one stays null. */
function medianOrNull(xs: (number | null)[]): number | null {
  const m = median(xs.map((x) => x ?? Infinity));
  return m === undefined || !Number.isFinite(m) ? null : m;
}

function round(x: number | undefined): number | undefined {
  return x === undefined ? undefined : Math.round(x * 100) / 100;
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const COLORS: Record<ContenderName, string> = {
  floor: '#777777',
  'floor-running': '#bbbbbb',
  bosun: '#1f77b4',
  'bosun-base': '#9ecae1',
  'bosun-http1': '#6baed6',
  kopf: '#d62728',
  'controller-runtime': '#2ca02c',
};

/** What a chart plots against N: a per-contender figure of the summaries, its title and its unit. */
export interface ChartMetric {
  /** The summary field after the contender's name: `_s` (time) or `_rss_mib` (peak RSS). */
  suffix: '_s' | '_rss_mib';
  title: string;
  unit: string;
}

/** Convergence time against N. */
export const TIME_CHART: ChartMetric = { suffix: '_s', title: 'Time until all Messages are Ready', unit: 's' };
/** Peak RSS against N (the floors have no process, so no line). */
export const RSS_CHART: ChartMetric = { suffix: '_rss_mib', title: 'Peak RSS of the contender process', unit: 'MiB' };

/** An SVG line chart of a median figure (time by default) against N, one line per contender, log-log. */
export function chartSvg(scenarios: ConvergeScenario[], metric: ChartMetric = TIME_CHART): string {
  const W = 720;
  const H = 420;
  const m = { l: 70, r: 180, t: 40, b: 60 };
  const ns = scenarios.map((s) => s.n);
  const ys = scenarios.flatMap((s) =>
    CONTENDERS.map((c) => (s as unknown as Record<string, number | undefined>)[`${field(c)}${metric.suffix}`]).filter(
      (v): v is number => v !== undefined,
    ),
  );
  const logx = (v: number) => Math.log10(v);
  const [x0, x1] = [logx(Math.min(...ns)) - 0.1, logx(Math.max(...ns)) + 0.1];
  const [y0, y1] = [Math.log10(Math.max(0.01, Math.min(...ys) / 1.5)), Math.log10(Math.max(...ys) * 1.5)];
  const px = (n: number) => m.l + ((logx(n) - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (s: number) => H - m.b - ((Math.log10(s) - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  parts.push(`<text x="${W / 2 - 120}" y="24" font-size="15">${metric.title}</text>`);
  parts.push(
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
  );
  for (const n of ns) parts.push(`<text x="${px(n) - 12}" y="${H - m.b + 18}">${n}</text>`);
  parts.push(`<text x="${(W - m.r) / 2}" y="${H - 15}">N (Messages, log scale)</text>`);
  for (let e = Math.floor(y0); e <= Math.ceil(y1); e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      if (Math.log10(v) < y0 || Math.log10(v) > y1) continue;
      parts.push(
        `<line x1="${m.l - 4}" y1="${py(v)}" x2="${W - m.r}" y2="${py(v)}" stroke="#eeeeee"/><text x="${m.l - 50}" y="${py(v) + 4}">${v < 1 ? v.toFixed(2) : v} ${metric.unit}</text>`,
      );
    }
  }
  CONTENDERS.forEach((c, i) => {
    const pts = scenarios
      .map((s) => [s.n, (s as unknown as Record<string, number | undefined>)[`${field(c)}${metric.suffix}`]] as const)
      .filter((p): p is readonly [number, number] => p[1] !== undefined);
    if (pts.length === 0) return;
    parts.push(
      `<polyline fill="none" stroke="${COLORS[c]}" stroke-width="2.5" points="${pts.map(([n, s]) => `${px(n)},${py(s)}`).join(' ')}"/>`,
    );
    for (const [n, s] of pts) parts.push(`<circle cx="${px(n)}" cy="${py(s)}" r="4" fill="${COLORS[c]}"/>`);
    parts.push(
      `<rect x="${W - m.r + 20}" y="${m.t + 20 + i * 24}" width="14" height="14" fill="${COLORS[c]}"/><text x="${W - m.r + 40}" y="${m.t + 32 + i * 24}">${c}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes latest.json (and a dated copy), the chart, and the table section of docs/benchmarks.md. */
export async function writeReport(
  scenarios: ConvergeScenario[],
  restarts: RestartResult[],
  streams: StreamResult[],
  command: string,
  startedAt = new Date(),
): Promise<void> {
  const date = new Date().toISOString();
  const restartSummary = summariseBy(restarts, (r) => `${r.contender}`).map(([c, rs]) => ({
    name: 'restart',
    contender: c,
    n: rs[0]!.n,
    rounds: rs.length,
    writes: median(rs.map((r) => r.writes)),
    seconds_until_idle: round(median(rs.map((r) => r.secondsUntilIdle))),
    peak_rss_mib: round(medianOrNull(rs.map((r) => r.peakRssMiB ?? null)) ?? undefined),
    cpu_s: round(medianOrNull(rs.map((r) => r.cpuSeconds ?? null)) ?? undefined),
    requests: rs[0]!.requests,
    events_by_source: rs[0]!.eventsBySource,
  }));
  const streamSummary = summariseBy(streams, (r) => `${r.contender}`).map(([c, rs]) => ({
    name: 'stream',
    contender: c,
    rate: rs[0]!.rate,
    seconds: rs[0]!.durationS,
    rounds: rs.length,
    p50_ms: medianOrNull(rs.map((r) => r.p50_ms)),
    p99_ms: medianOrNull(rs.map((r) => r.p99_ms)),
    not_ready: Math.max(...rs.map((r) => r.missing)),
  }));
  const result = {
    date,
    commit: commit(),
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${cpus()[0]?.model ?? ''}`.trim(),
    command,
    scenarios: [...scenarios, ...restartSummary, ...streamSummary],
  };
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  // Named by when the invocation started, so the saves after each stage of one run replace each other.
  await writeFile(join(dir, `${startedAt.toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`), `${JSON.stringify(result, null, 2)}\n`);
  if (scenarios.length > 0) {
    for (const [metric, file] of [
      [TIME_CHART, 'benchmarks-converge.png'],
      [RSS_CHART, 'benchmarks-rss.png'],
    ] as const) {
      const png = new Resvg(chartSvg(scenarios, metric), { font: { loadSystemFonts: true } }).render().asPng();
      await writeFile(join(ROOT, 'docs', file), png);
    }
  }

  const fmt = (v: number | undefined, unit = '') => (v === undefined ? '—' : `${v}${unit}`);
  const lines: string[] = [
    BEGIN,
    `Measured ${date.slice(0, 16).replace('T', ' ')} UTC at commit \`${result.commit}\` on ${result.machine}, with:`,
    '',
    '```',
    command,
    '```',
    '',
    'Convergence: N Messages created at once (32 concurrent creates) on a fresh control plane per run; time until every Message is Ready.',
    'floor: the necessary writes only (create the Pod, write the status at once), no watch, no cache; the clock stops at its last status write.',
    'floor-running: the same writes, but each status written when its Pod is Running (one Pod watch, no cache): the least any operator whose Ready',
    'follows its Pod can take. Medians over rounds; ratios are taken within each round, then the median.',
    '',
    ...(scenarios.length ? [] : ['(no convergence runs in this invocation)']),
    '| N | rounds | floor | floor-running | bosun | kopf | controller-runtime | bosun ÷ floor | bosun ÷ floor-running | kopf ÷ bosun | controller-runtime ÷ bosun |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of scenarios.filter((x) => x.from)) {
    lines.splice(
      lines.indexOf('```', lines.indexOf('```') + 1) + 1,
      0,
      '',
      `N = ${s.n} was measured earlier (${s.from!.date.slice(0, 16).replace('T', ' ')} UTC, commit \`${s.from!.commit}\`) and carried over with --merge:`,
      '',
      '```',
      s.from!.command,
      '```',
    );
  }
  for (const s of scenarios) {
    // Within each round, then the median, as for the floors; a carried-over result from before has only the medians.
    const kb = s.ratio_to_bosun?.kopf ?? (s.kopf_s && s.bosun_s ? round(s.kopf_s / s.bosun_s) : undefined);
    const cb =
      s.ratio_to_bosun?.['controller-runtime'] ??
      (s.controller_runtime_s && s.bosun_s ? round(s.controller_runtime_s / s.bosun_s) : undefined);
    lines.push(
      `| ${s.n} | ${s.rounds} | ${fmt(s.floor_s, ' s')} | ${fmt(s.floor_running_s, ' s')} | ${fmt(s.bosun_s, ' s')} | ${fmt(s.kopf_s, ' s')} | ${fmt(s.controller_runtime_s, ' s')} | ${fmt(s.ratio_to_floor.bosun, '×')} | ${fmt(s.ratio_to_floor_running.bosun, '×')} | ${fmt(kb, '×')} | ${fmt(cb, '×')} |`,
    );
  }
  lines.push(
    '',
    "Resources during the same runs (medians): the contender's peak RSS (VmHWM) and CPU seconds, and the CPU seconds the control plane",
    '(etcd, API server, controller-manager, scheduler, kwok) spent meanwhile. On 2 cores everything shares the machine, so CPU is time.',
    '',
    '| N | contender | peak RSS | CPU | control plane CPU |',
    '|---|---|---|---|---|',
  );
  for (const s of scenarios) {
    const rec = s as unknown as Record<string, number | undefined>;
    for (const c of CONTENDERS) {
      if (s.cluster_cpu_s[c] === undefined) continue;
      lines.push(
        `| ${s.n} | ${c} | ${fmt(rec[`${field(c)}_rss_mib`], ' MiB')} | ${fmt(s.cpu_s[c], ' s')} | ${fmt(s.cluster_cpu_s[c], ' s')} |`,
      );
    }
  }
  lines.push(
    '',
    '![convergence time against N](benchmarks-converge.png)',
    '',
    '![peak RSS against N](benchmarks-rss.png)',
    '',
    'API requests per Message during the run (apiserver_request_total, median over rounds):',
    '',
  );
  for (const s of scenarios) {
    lines.push(`N = ${s.n}:`, '', '| contender | requests |', '|---|---|');
    for (const c of CONTENDERS) {
      const r = s.requests[c];
      if (r)
        lines.push(
          `| ${c} | ${Object.entries(r)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')} |`,
        );
    }
    lines.push('');
  }
  if (restartSummary.length) {
    lines.push(
      `Restart over ${restartSummary[0]!.n} converged Messages (writes to Messages, Pods and Events by the new process; time until, for 3 s, no request and no watch event; the new process's peak RSS and CPU until then):`,
      '',
      '| contender | writes | until idle | peak RSS | CPU | requests | Events recorded since the restart, by component |',
      '|---|---|---|---|---|---|---|',
    );
    for (const r of restartSummary) {
      const events =
        Object.entries(r.events_by_source)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ') || 'none';
      lines.push(
        `| ${r.contender} | ${r.writes} | ${r.seconds_until_idle} s | ${fmt(r.peak_rss_mib, ' MiB')} | ${fmt(r.cpu_s, ' s')} | ${Object.entries(
          r.requests,
        )
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')} | ${events} |`,
      );
    }
    lines.push('');
  }
  if (streamSummary.length) {
    lines.push(
      `Steady stream: ${streamSummary[0]!.rate} creates/s for ${streamSummary[0]!.seconds} s; create-to-Ready latency (medians over rounds):`,
      '',
      '| contender | p50 | p99 | not Ready after 60 s |',
      '|---|---|---|---|',
    );
    const ms = (v: number | null) => (v === null ? 'not reached' : `${v} ms`);
    for (const r of streamSummary) lines.push(`| ${r.contender} | ${ms(r.p50_ms)} | ${ms(r.p99_ms)} | ${r.not_ready} |`);
    lines.push('');
  }
  lines.push(END);
  const docPath = join(ROOT, 'docs', 'benchmarks.md');
  let doc = await readFile(docPath, 'utf8').catch(() => '# Benchmarks\n\n');
  const section = lines.join('\n');
  doc = doc.includes(BEGIN)
    ? doc.slice(0, doc.indexOf(BEGIN)) + section + doc.slice(doc.indexOf(END) + END.length)
    : `${doc.trimEnd()}\n\n## Convergence\n\n${section}\n`;
  await writeFile(docPath, doc);
}

function summariseBy<T>(xs: T[], key: (x: T) => string): [string, T[]][] {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return [...m];
}
