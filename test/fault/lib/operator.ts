// The operators as a separate process (`bosun run message --standalone`, or several operators in
// one process: `bosun run message application flightticket`), so a scenario can SIGKILL it,
// SIGSTOP it, and start it again, as a crash or a node freeze would.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the operator runs from source there. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Raised when the operator process cannot be started or does not get ready; names its log. */
export class OperatorProcessError extends Error {
  override name = 'OperatorProcessError';
}

/** Options of `operatorProcess`. */
export interface OperatorProcessOptions {
  kubeconfig: string;
  /** The namespace or namespaces the process watches (one `-n` each). */
  namespace: string | string[];
  /** File the process's output (JSON log lines) is appended to, across restarts. */
  logFile: string;
  /** The operator or operators `bosun run` starts in this one process; default `message`. */
  operator?: string | string[];
  /** Extra environment of the process. */
  env?: Record<string, string>;
}

/** One operator process and the ones started after it to replace it. */
export interface OperatorProcess {
  /** The pid of the current process (undefined before start). */
  readonly pid: number | undefined;
  /** How many processes were started so far. */
  readonly starts: number;
  /** The log file of every process started. */
  readonly logFile: string;
  /** Starts a new process (the previous one must be gone) and resolves when its caches are synced (/readyz is 200), with the ms it took. */
  start(): Promise<number>;
  /** Sends a signal to the current process; SIGKILL and SIGTERM wait until it is gone. */
  signal(sig: NodeJS.Signals): Promise<void>;
  /** The current process's Prometheus metrics (text). */
  metrics(): Promise<string>;
  /** The status of the current process's /healthz, or undefined when it gives no answer within `timeoutMs` (refused, gone or hung). */
  healthz(timeoutMs?: number): Promise<number | undefined>;
  /** The resident set size of the current process in bytes, read from /proc (what the kernel charges it, heap and all). */
  rss(): Promise<number>;
  /** Whether the current process runs. */
  alive(): boolean;
  /** The exit of the current process, if it exited by itself: code or signal. */
  exitedUnexpectedly(): string | undefined;
  /** Stops the current process (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** The ports a process said it serves on (its `serving /metrics` and `serving /healthz and /readyz` log lines). */
export function servingPorts(log: string): { metrics?: number; health?: number } {
  const out: { metrics?: number; health?: number } = {};
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    let l: { msg?: unknown; port?: unknown };
    try {
      l = JSON.parse(line) as { msg?: unknown; port?: unknown };
    } catch {
      continue;
    }
    if (typeof l.port !== 'number') continue;
    if (l.msg === 'serving /metrics') out.metrics = l.port;
    if (l.msg === 'serving /healthz and /readyz') out.health = l.port;
  }
  return out;
}

/** The last `n` lines of a process's output, indented for an error message. */
export function lastLines(text: string, n = 20): string {
  const lines = text.trimEnd().split('\n');
  return lines
    .slice(-n)
    .map((l) => `    ${l.length > 400 ? `${l.slice(0, 400)}…` : l}`)
    .join('\n');
}

/** The operator names of `bosun run` for an `operator` option: one, several, or the default `message`. */
export function operatorNames(operator: string | string[] | undefined): string[] {
  const list = operator === undefined ? ['message'] : typeof operator === 'string' ? [operator] : operator;
  if (list.length === 0)
    throw new OperatorProcessError('operatorProcess: operator is an empty list; name at least one operator, e.g. ["message"]');
  return list;
}

/** A handle on the operator as a process; nothing runs until `start()`. */
export function operatorProcess(opts: OperatorProcessOptions): OperatorProcess {
  let child: ChildProcess | undefined;
  let exit: string | undefined;
  let expected = false;
  let starts = 0;
  let metricsPort = 0;
  let healthPort = 0;
  let exited: Promise<void> = Promise.resolve();

  const alive = () => child !== undefined && exit === undefined;
  const waitGone = async (timeoutMs: number) => {
    await Promise.race([exited, new Promise((r) => setTimeout(r, timeoutMs))]);
  };

  return {
    get pid() {
      return child?.pid;
    },
    get starts() {
      return starts;
    },
    logFile: opts.logFile,
    async start() {
      if (alive()) throw new OperatorProcessError(`operator pid ${child?.pid} still runs; signal it first`);
      const level = opts.env?.BOSUN_LOG_LEVEL ?? process.env.BOSUN_LOG_LEVEL;
      if (level !== undefined && !['info', 'debug', 'trace'].includes(level))
        throw new OperatorProcessError(
          `BOSUN_LOG_LEVEL=${level} hides the operator's 'serving' lines, which name the ports it bound; use info, debug or trace`,
        );
      const t0 = performance.now();
      metricsPort = 0;
      healthPort = 0;
      // Only this process's lines count: the file holds every earlier process's too.
      const offset = existsSync(opts.logFile) ? statSync(opts.logFile).size : 0;
      const ownLog = async () => (await readFile(opts.logFile)).subarray(offset).toString('utf8');
      const fd = openSync(opts.logFile, 'a');
      const args = [
        '--import',
        'tsx',
        join(REPO, 'packages/bosun/src/tooling/cli/run-main.ts'),
        'run',
        ...operatorNames(opts.operator),
        '--kubeconfig',
        opts.kubeconfig,
        '--standalone',
        ...(typeof opts.namespace === 'string' ? [opts.namespace] : opts.namespace).flatMap((n) => ['-n', n]),
        // Ports the process binds itself and logs: a port picked here and bound there could be taken in between.
        '--metrics-addr',
        '127.0.0.1:0',
        '--health-addr',
        '127.0.0.1:0',
        // The scenarios fault the controllers. The webhooks are faulted in test/upgrade, and with config/crd's
        // CRDs (FlightTicket serves v1 alone) they would be inert here, while registering them needs a right
        // the throttled ServiceAccount of scenario 6 does not have.
        '--no-webhooks',
      ];
      const c = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', fd, fd], env: { ...process.env, ...opts.env } });
      closeSync(fd);
      child = c;
      exit = undefined;
      expected = false;
      starts++;
      exited = new Promise<void>((res) => {
        c.once('exit', (code, sig) => {
          if (child === c) exit = sig ?? `code ${code ?? '?'}`;
          res();
        });
      });
      for (;;) {
        if (exit !== undefined)
          throw new OperatorProcessError(
            `the operator exited (${exit}) while starting; the end of ${opts.logFile}:\n${lastLines(await ownLog())}`,
          );
        if (healthPort === 0 || metricsPort === 0) ({ metrics: metricsPort = 0, health: healthPort = 0 } = servingPorts(await ownLog()));
        const ready =
          healthPort !== 0 &&
          metricsPort !== 0 &&
          (await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          ));
        if (ready) return performance.now() - t0;
        if (performance.now() - t0 > 60_000)
          throw new OperatorProcessError(
            `the operator was not ready 60 s after its start; the end of ${opts.logFile}:\n${lastLines(await ownLog())}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async signal(sig) {
      if (!alive() || child?.pid === undefined) throw new OperatorProcessError(`no operator process runs to send ${sig} to`);
      if (sig === 'SIGKILL' || sig === 'SIGTERM') expected = true;
      process.kill(child.pid, sig);
      if (sig === 'SIGKILL' || sig === 'SIGTERM') {
        await waitGone(30_000);
        if (alive()) throw new OperatorProcessError(`operator pid ${child.pid} still runs 30 s after ${sig}`);
      }
    },
    async metrics() {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return r.text();
    },
    async healthz(timeoutMs = 5_000) {
      return fetch(`http://127.0.0.1:${healthPort}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })
        .then(async (r) => {
          await r.text();
          return r.status;
        })
        .catch(() => undefined);
    },
    async rss() {
      if (!alive() || child?.pid === undefined) throw new OperatorProcessError('no operator process runs to read the RSS of');
      return rssOf(await readFile(`/proc/${child.pid}/status`, 'utf8'));
    },
    alive,
    exitedUnexpectedly: () => (exit !== undefined && !expected ? exit : undefined),
    async stop() {
      if (!alive() || child?.pid === undefined) return;
      expected = true;
      // A stopped process does not act on SIGTERM until it runs again.
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGTERM');
      await waitGone(10_000);
      if (alive()) {
        process.kill(child.pid, 'SIGKILL');
        await waitGone(10_000);
      }
    },
  };
}

/** The VmRSS of a /proc/<pid>/status text, in bytes. */
export function rssOf(status: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new OperatorProcessError('no VmRSS line in /proc/<pid>/status: the process is a zombie or gone');
  return Number(m[1]) * 1024;
}

/**
 * The median of the samples taken in [fromMs, toMs), or undefined when there are none. RSS sampled every 30 s swings
 * by ±10% within a minute as the GC runs, so a leak is judged on the median of a window, not on one sample.
 */
export function windowMedian(samples: readonly { atMs: number; bytes: number }[], fromMs: number, toMs: number): number | undefined {
  const xs = samples
    .filter((s) => s.atMs >= fromMs && s.atMs < toMs)
    .map((s) => s.bytes)
    .sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** The sum of a Prometheus metric over its series whose labels match (a string exactly, a RegExp by test); 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string | RegExp> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const value = (k: string) => new RegExp(`[{,]${k}="([^"]*)"`).exec(line)?.[1];
    if (!Object.entries(labels).every(([k, v]) => (typeof v === 'string' ? value(k) === v : v.test(value(k) ?? '')))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** One JSON line of the operator's log (lines that are not JSON, such as Node warnings, are left out). */
export interface LogLine {
  level: string;
  time: string;
  msg: string;
  name?: string;
  [field: string]: unknown;
}

/** Reads the operator's log file (every process that wrote to it). */
export async function readOperatorLog(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      /* cut short by a SIGKILL */
    }
  }
  return out;
}

/** Failed reconciles in the log: how many, and the most for one object (its backoff step). */
export function reconcileFailures(lines: LogLine[]): { total: number; maxPerObject: number; name: string } {
  const per = new Map<string, number>();
  let total = 0;
  for (const l of lines) {
    if (l.msg !== 'reconcile failed; retrying with backoff') continue;
    total++;
    per.set(l.name ?? '', (per.get(l.name ?? '') ?? 0) + 1);
  }
  let max = { total, maxPerObject: 0, name: '' };
  for (const [name, n] of per) if (n > max.maxPerObject) max = { total, maxPerObject: n, name };
  return max;
}
