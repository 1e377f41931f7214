// `make bench-webhook`: the admission latency a validating webhook server adds, bosun's startWebhookServer
// beside controller-runtime's webhook.Server, the same webhook (Widgets with spec.size above 100 refused) on
// one control plane of its own. Each phase: one contender's server started and registered (url clientConfig,
// failurePolicy Fail, timeoutSeconds 10), creates through the API server at a steady rate, and the API server's
// apiserver_admission_webhook_admission_duration_seconds read before and after; contenders interleaved per round.
// A `none` phase (no webhook registered) gives the create latency without admission, for the client-side view.
//
//   node --import tsx bench/webhook.ts [--rate 50] [--seconds 30] [--rounds 2] [--contenders bosun,controller-runtime,none] [--no-write]
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError, KubeClient } from 'bosun';
import { apiserverMetrics, runKubectl, startCluster, stopCluster, type ClusterState } from 'bosun/envtest';
import { ensureWebhookCerts, type WebhookCerts } from '../packages/bosun/src/tooling/webhook/certs.js';
import { registerWebhooks, unregisterWebhooks } from '../packages/bosun/src/tooling/webhook/register.js';
import { peakRssMiB, procCpuSeconds } from './lib/proc.js';
import { histogramDelta, histogramQuantile, readHistogram, shareAtOrBelow, type Histogram } from './lib/webhook-metrics.js';
import {
  bundleBosunWebhook,
  ensureControllerRuntimeWebhook,
  startWebhookContender,
  WEBHOOK_CONTENDERS,
  type RunningWebhook,
  type WebhookContender,
} from './lib/webhook-peers.js';
import { MAX_SIZE, WIDGET_CRD, widgetWebhook, widgetWebhookName, WidgetResource, type Widget } from './lib/webhook-widget.js';

const { values } = parseArgs({
  options: {
    /** Creates per second during a phase. */
    rate: { type: 'string', default: '50' },
    /** Seconds of load per phase. */
    seconds: { type: 'string', default: '30' },
    /** Rounds; each runs every contender once, in order. */
    rounds: { type: 'string', default: '2' },
    /** Comma-separated: bosun, controller-runtime, none (no webhook registered). */
    contenders: { type: 'string', default: 'bosun,controller-runtime,none' },
    /** Print only: no docs/benchmarks.md section, no results file. */
    'no-write': { type: 'boolean', default: false },
  },
});

type Phase = WebhookContender | 'none';
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const contenders = values.contenders.split(',') as Phase[];
for (const c of contenders)
  if (c !== 'none' && !(WEBHOOK_CONTENDERS as readonly string[]).includes(c))
    throw new Error(`unknown contender '${c}'; choose from ${[...WEBHOOK_CONTENDERS, 'none'].join(', ')}`);
const NS = 'latency-bench';
const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const ROOT = join(import.meta.dirname, '..');
const command = `node --import tsx bench/webhook.ts ${process.argv.slice(2).join(' ')}`.trim();
const log = (l: string) => process.stdout.write(`${l}\n`);

/** What one phase measured. */
interface PhaseResult {
  contender: Phase;
  round: number;
  /** Creates sent, and how they ended. */
  sent: number;
  admitted: number;
  denied: number;
  /** Creates whose outcome was not the one expected (an error, or an admission against the rule). */
  unexpected: number;
  unexpectedSample?: string;
  /** Webhook calls the API server counted for this contender's webhook during the phase. */
  calls: number;
  /** Calls counted for the other contenders' webhooks during the phase: must be 0. */
  strayCalls: number;
  /** From the API server's histogram (seconds): interpolated quantiles, the exact mean, the share at or under 5 ms. */
  admissionP50?: number;
  admissionP99?: number;
  admissionMean?: number;
  admissionShare5ms?: number;
  /** Client-observed create latency, ms, over every create and over the admitted ones. */
  clientP50: number;
  clientP99: number;
  clientAdmittedP50: number;
  clientAdmittedP99: number;
  /** The webhook server process during the phase: CPU seconds, and its peak RSS (VmHWM) in MiB. */
  cpuSeconds?: number;
  peakRssMiB?: number;
  apiserverCpuSeconds: number;
  /** The 1-minute load average, highest seen during the phase. */
  loadMax: number;
  /** How long the creates took to send at the rate (ms late at the end: the bench could not keep up). */
  lateMs: number;
}

function percentileMs(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return v === undefined ? NaN : Math.round(v * 10) / 10;
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function widget(name: string, size: number): Widget {
  return {
    apiVersion: `${WidgetResource.group}/${WidgetResource.version}`,
    kind: 'Widget',
    metadata: { name, namespace: NS },
    spec: { size },
  };
}

/** One in four creates asks for a size the webhook refuses. */
const sizeOf = (i: number): number => (i % 4 === 3 ? MAX_SIZE + 1 + (i % 97) : i % (MAX_SIZE + 1));

type Outcome = 'admitted' | 'denied' | 'unexpected';

/** Creates one Widget; returns how it ended against what `phase` should do with it, and the client-observed ms. */
async function createOne(
  client: KubeClient,
  phase: Phase,
  name: string,
  size: number,
): Promise<{ outcome: Outcome; ms: number; why?: string }> {
  const refuse = phase !== 'none' && size > MAX_SIZE;
  const t0 = performance.now();
  try {
    await client.create(WidgetResource, widget(name, size));
    const ms = performance.now() - t0;
    return refuse ? { outcome: 'unexpected', ms, why: `${name} (size ${size}) was admitted` } : { outcome: 'admitted', ms };
  } catch (err) {
    const ms = performance.now() - t0;
    const denial =
      err instanceof ApiError &&
      err.status === 403 &&
      err.message.includes(`admission webhook "${widgetWebhookName(phase)}" denied the request`);
    if (refuse && denial) return { outcome: 'denied', ms };
    return { outcome: 'unexpected', ms, why: `${name} (size ${size}): ${(err as Error).message}` };
  }
}

function calls(text: string, phase: Phase): number {
  return phase === 'none' ? 0 : readHistogram(text, METRIC, { name: widgetWebhookName(phase) }).count;
}

const inFlight = new Set<() => Promise<void>>();

async function main(): Promise<void> {
  const t0 = new Date();
  log(
    `webhook bench: ${contenders.join(', ')} × ${rounds} rounds, ${rate}/s for ${seconds} s each; load average ${loadavg()[0]!.toFixed(2)} at start`,
  );
  const programs = {
    controllerRuntime: contenders.includes('controller-runtime') ? await ensureControllerRuntimeWebhook(log) : '',
    bosun: contenders.includes('bosun') ? await bundleBosunWebhook() : '',
  };
  const dir = await mkdtemp(join(tmpdir(), 'bosun-bench-webhook-'));
  const progress = () => undefined;
  let client: KubeClient | undefined;
  const cleanupCluster = async () => {
    client?.close();
    await stopCluster({ dir, purge: true, progress });
    await rm(dir, { recursive: true, force: true });
  };
  inFlight.add(cleanupCluster);
  const results: PhaseResult[] = [];
  try {
    const { kubeconfig, state } = await startCluster({ dir, progress });
    client = KubeClient.fromConfig({ kubeconfig });
    const k = async (args: string[], input?: string) => {
      const r = await runKubectl(kubeconfig, args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    };
    await k(['apply', '-f', '-'], JSON.stringify(WIDGET_CRD));
    await k(['wait', '--for=condition=Established', `crd/${WIDGET_CRD.metadata.name}`]);
    await k(['create', 'namespace', NS]);
    const certs = await ensureWebhookCerts(join(dir, 'webhook'));
    for (let round = 1; round <= rounds; round++)
      for (const c of contenders) results.push(await runPhase(client, state, certs, programs, c, round));
  } finally {
    await cleanupCluster();
    inFlight.delete(cleanupCluster);
  }
  const report = render(results, t0);
  log('');
  log(report.table);
  if (!values['no-write']) {
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = join(ROOT, 'bench', 'results', `webhook-${t0.toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
    await writeFile(
      file,
      `${JSON.stringify({ date: t0.toISOString(), commit: report.commit, command, rate, seconds, results }, null, 2)}\n`,
    );
    await writeSection(report.markdown);
    log(`webhook bench: wrote ${file} and the "Admission webhooks" section of docs/benchmarks.md`);
  }
}

async function runPhase(
  client: KubeClient,
  state: ClusterState,
  certs: WebhookCerts,
  programs: { bosun: string; controllerRuntime: string },
  phase: Phase,
  round: number,
): Promise<PhaseResult> {
  let server: RunningWebhook | undefined;
  const registration = `bench-latency-${phase}`;
  const teardown = async () => {
    if (phase !== 'none') await unregisterWebhooks(client, registration);
    await server?.stop();
  };
  inFlight.add(teardown);
  try {
    if (phase !== 'none') {
      server = await startWebhookContender(phase, certs.dir, programs);
      await registerWebhooks({
        client,
        name: registration,
        baseUrl: server.url,
        caBundle: certs.caBundle,
        webhooks: [widgetWebhook(phase)],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
      });
    }
    // Warm-up: until the API server calls this contender's webhook (it picks a registration up within about a
    // second), no other webhook is left in the way, and 20 creates in a row end as the rule says.
    const warmUntil = Date.now() + 60_000;
    const seen0 = calls(await apiserverMetrics(state), phase);
    for (let i = 0, streak = 0; ; i++) {
      const r = await createOne(client, phase, `warm-r${round}-${phase}-${i}`, sizeOf(i));
      streak = r.outcome === 'unexpected' ? 0 : streak + 1;
      if (streak >= 20 && (phase === 'none' || calls(await apiserverMetrics(state), phase) > seen0)) break;
      if (Date.now() > warmUntil) throw new Error(`${phase}: the warm-up did not settle within 60 s (last: ${r.why ?? r.outcome})`);
      await new Promise((res) => setTimeout(res, 100));
    }
    await new Promise((res) => setTimeout(res, 1000));

    const others = contenders.filter((c): c is WebhookContender => c !== 'none' && c !== phase);
    const before = await apiserverMetrics(state);
    const pid = server?.child.pid;
    const cpu0 = procCpuSeconds(pid);
    const apiCpu0 = procCpuSeconds(state.pids['kube-apiserver']) ?? 0;
    let loadMax = loadavg()[0]!;
    const loadTimer = setInterval(() => (loadMax = Math.max(loadMax, loadavg()[0]!)), 2000);
    const total = Math.round(rate * seconds);
    const done: Promise<{ outcome: Outcome; ms: number; why?: string; size: number }>[] = [];
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      const size = sizeOf(i);
      done.push(createOne(client, phase, `w-r${round}-${phase}-${i}`, size).then((r) => ({ ...r, size })));
    }
    const lateMs = performance.now() - (start + ((total - 1) * 1000) / rate);
    const outcomes = await Promise.all(done);
    clearInterval(loadTimer);
    const cpu = cpu0 === undefined ? undefined : (procCpuSeconds(pid) ?? cpu0) - cpu0;
    const rss = peakRssMiB(pid);
    const apiserverCpuSeconds = (procCpuSeconds(state.pids['kube-apiserver']) ?? apiCpu0) - apiCpu0;
    const after = await apiserverMetrics(state);

    const h: Histogram | undefined =
      phase === 'none'
        ? undefined
        : histogramDelta(
            readHistogram(before, METRIC, { name: widgetWebhookName(phase) }),
            readHistogram(after, METRIC, { name: widgetWebhookName(phase) }),
          );
    const strayCalls = others.reduce((n, o) => n + calls(after, o) - calls(before, o), 0);
    const unexpected = outcomes.filter((o) => o.outcome === 'unexpected');
    const admittedMs = outcomes.filter((o) => o.outcome === 'admitted').map((o) => o.ms);
    const r: PhaseResult = {
      contender: phase,
      round,
      sent: total,
      admitted: admittedMs.length,
      denied: outcomes.filter((o) => o.outcome === 'denied').length,
      unexpected: unexpected.length,
      unexpectedSample: unexpected[0]?.why,
      calls: h?.count ?? 0,
      strayCalls,
      admissionP50: h ? histogramQuantile(0.5, h) : undefined,
      admissionP99: h ? histogramQuantile(0.99, h) : undefined,
      admissionMean: h && h.count > 0 ? h.sum / h.count : undefined,
      admissionShare5ms: h ? shareAtOrBelow(h, 0.005) : undefined,
      clientP50: percentileMs(
        outcomes.map((o) => o.ms),
        50,
      ),
      clientP99: percentileMs(
        outcomes.map((o) => o.ms),
        99,
      ),
      clientAdmittedP50: percentileMs(admittedMs, 50),
      clientAdmittedP99: percentileMs(admittedMs, 99),
      cpuSeconds: cpu,
      peakRssMiB: rss,
      apiserverCpuSeconds,
      loadMax,
      lateMs,
    };
    log(
      `  ${phase.padEnd(18)} round ${round}: ${r.calls} calls (stray ${r.strayCalls}), admission p50 ${ms(r.admissionP50)} p99 ${ms(r.admissionP99)} mean ${ms(r.admissionMean)}; client p50 ${r.clientP50} ms p99 ${r.clientP99} ms; ${r.admitted} admitted, ${r.denied} denied, ${r.unexpected} unexpected${r.unexpectedSample ? ` (${r.unexpectedSample})` : ''}; CPU ${r.cpuSeconds?.toFixed(2) ?? '—'} s, peak RSS ${r.peakRssMiB?.toFixed(1) ?? '—'} MiB; load ≤ ${loadMax.toFixed(1)}`,
    );
    return r;
  } finally {
    await teardown();
    inFlight.delete(teardown);
  }
}

function ms(seconds: number | undefined): string {
  return seconds === undefined || Number.isNaN(seconds) ? '—' : `${(seconds * 1000).toFixed(1)} ms`;
}

function fmt(x: number | undefined, digits = 1, unit = ''): string {
  return x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(digits)}${unit}`;
}

function ratio(results: PhaseResult[], pick: (r: PhaseResult) => number | undefined): number {
  // Within each round (bosun and controller-runtime ran minutes apart on the same control plane), then the median.
  const per: number[] = [];
  for (const round of new Set(results.map((r) => r.round))) {
    const b = results.find((r) => r.round === round && r.contender === 'bosun');
    const c = results.find((r) => r.round === round && r.contender === 'controller-runtime');
    const bv = b && pick(b);
    const cv = c && pick(c);
    if (bv !== undefined && cv !== undefined && cv > 0) per.push(bv / cv);
  }
  return median(per);
}

function render(results: PhaseResult[], t0: Date): { table: string; markdown: string; commit: string } {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  const rows = results.map(
    (r) =>
      `| ${r.contender} | ${r.round} | ${r.calls} | ${ms(r.admissionP50)} | ${ms(r.admissionP99)} | ${ms(r.admissionMean)} | ${fmt(
        r.admissionShare5ms === undefined ? undefined : r.admissionShare5ms * 100,
        0,
        '%',
      )} | ${r.clientP50} ms | ${r.clientP99} ms | ${r.admitted} / ${r.denied} / ${r.unexpected} | ${fmt(r.cpuSeconds, 2, ' s')} | ${fmt(
        r.peakRssMiB,
        1,
        ' MiB',
      )} | ${fmt(r.apiserverCpuSeconds, 1, ' s')} | ${fmt(r.loadMax, 1)} |`,
  );
  const table = [
    '| contender | round | webhook calls | admission p50 | admission p99 | admission mean | calls ≤ 5 ms | client p50 | client p99 | admitted / denied / unexpected | server CPU | server peak RSS | API server CPU | load (1 min, max) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const med = (c: Phase, pick: (r: PhaseResult) => number | undefined) =>
    median(results.filter((r) => r.contender === c).map((r) => pick(r) ?? NaN));
  const summary = [
    '| median over rounds | admission p50 | admission p99 | admission mean | client p50 | client p99 | client p50, admitted creates | server CPU | server peak RSS |',
    '|---|---|---|---|---|---|---|---|---|',
    ...contenders.map(
      (c) =>
        `| ${c} | ${ms(med(c, (r) => r.admissionP50))} | ${ms(med(c, (r) => r.admissionP99))} | ${ms(med(c, (r) => r.admissionMean))} | ${fmt(
          med(c, (r) => r.clientP50),
          1,
          ' ms',
        )} | ${fmt(
          med(c, (r) => r.clientP99),
          1,
          ' ms',
        )} | ${fmt(
          med(c, (r) => r.clientAdmittedP50),
          1,
          ' ms',
        )} | ${fmt(
          med(c, (r) => r.cpuSeconds),
          2,
          ' s',
        )} | ${fmt(
          med(c, (r) => r.peakRssMiB),
          1,
          ' MiB',
        )} |`,
    ),
  ];
  const ratios =
    contenders.includes('bosun') && contenders.includes('controller-runtime')
      ? `bosun ÷ controller-runtime (within each round, median): admission p50 ${fmt(
          ratio(results, (r) => r.admissionP50),
          2,
          '×',
        )}, p99 ${fmt(
          ratio(results, (r) => r.admissionP99),
          2,
          '×',
        )}, mean ${fmt(
          ratio(results, (r) => r.admissionMean),
          2,
          '×',
        )}; client p50 ${fmt(
          ratio(results, (r) => r.clientP50),
          2,
          '×',
        )}, p99 ${fmt(
          ratio(results, (r) => r.clientP99),
          2,
          '×',
        )}; server CPU ${fmt(
          ratio(results, (r) => r.cpuSeconds),
          2,
          '×',
        )}; peak RSS ${fmt(
          ratio(results, (r) => r.peakRssMiB),
          2,
          '×',
        )}.`
      : '';
  const loadMax = Math.max(...results.map((r) => r.loadMax));
  const machine = `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${cpus()[0]?.model ?? 'unknown CPU'}`;
  const shared =
    loadMax > 2
      ? `The machine was shared with other work: the 1-minute load average reached ${loadMax.toFixed(1)} during the phases (on ${cpus().length} cores), so absolute figures include waiting for a CPU; the contenders were interleaved so that load fell on both, and the ratios are the figures to read.`
      : `The 1-minute load average stayed at or below ${loadMax.toFixed(1)} during the phases.`;
  const markdown = [
    `Measured ${t0.toISOString().slice(0, 16).replace('T', ' ')} UTC at commit \`${commit}\`${dirty ? ' (with other work uncommitted in the tree)' : ''} on ${machine}, with:`,
    '',
    '```',
    command,
    '```',
    '',
    `One control plane of its own for the run; per phase one webhook server process on 127.0.0.1 (certificate from`,
    `tooling/webhook/certs.ts, registered with a url clientConfig, failurePolicy Fail, timeoutSeconds 10), ${rate} Widget`,
    `creates/s for ${seconds} s through the API server (one in four refused), phases interleaved ${contenders.join(', ')} per round.`,
    `Admission figures are the API server's \`${METRIC}\` for the phase's webhook (bucket deltas; p50/p99`,
    'interpolated as histogram_quantile does, inside buckets 0–5 ms and 5–25 ms, so they are coarse; the mean is exact,',
    'from `_sum`/`_count`). Client figures are per create, HTTP/2, measured by the bench. `none`: no webhook registered.',
    '',
    table,
    '',
    ...summary,
    '',
    ratios,
    '',
    shared,
  ].join('\n');
  return { table: `${table}\n\n${summary.join('\n')}\n\n${ratios}\n\n${shared}`, markdown, commit };
}

const BEGIN = '<!-- webhook:begin (written by bench/webhook.ts) -->';
const END = '<!-- webhook:end -->';

/** Writes the figures between the markers of the "Admission webhooks" section, adding the section at the end when missing. */
async function writeSection(markdown: string): Promise<void> {
  const file = join(ROOT, 'docs', 'benchmarks.md');
  const doc = await readFile(file, 'utf8');
  const block = `${BEGIN}\n${markdown}\n${END}`;
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${doc.slice(0, a)}${block}${doc.slice(b + END.length)}`
      : `${doc.replace(/\n*$/, '\n')}\n## Admission webhooks\n\n${block}\n`;
  await writeFile(file, next);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    log(`${sig}: stopping the webhook servers and the control plane`);
    void Promise.all([...inFlight].map((f) => f().catch(() => undefined))).finally(() => process.exit(130));
  });

await main();
