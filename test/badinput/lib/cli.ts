// Running the bosun CLI as a user does (a child process, from the TypeScript sources), and
// recording what each bad-input case showed the user, for docs/bad-input.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The CLI entry point that runs the sources through tsx (dist/ may lag behind them). */
const ENTRY = resolve(REPO, 'packages/bosun/src/tooling/cli/run-main.ts');
const TSX = import.meta.resolve('tsx');

/** How a CLI run ended. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run. */
  ms: number;
  /** True when the run outlived its timeout and was killed: a hang. */
  timedOut: boolean;
}

/** Options of `runCli`. */
export interface CliOptions {
  /** Extra environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the run after this long and report timedOut (default 20 s). */
  timeoutMs?: number;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BOSUN_DEBUG: undefined, NODE_OPTIONS: undefined };
  for (const [k, v] of Object.entries(extra)) env[k] = v;
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

/** The command line a user types for these arguments, for the docs table. */
export function commandLine(args: string[]): string {
  return ['bosun', ...args.map((a) => (/^[\w./:=@,+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))].join(' ');
}

/** Starts `bosun <args>` as a child process; the caller reads and ends it. */
export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, ENTRY, ...args], {
    cwd: opts.cwd ?? REPO,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `bosun <args>` to its end (or its timeout) and returns what it printed and how it exited. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const t0 = performance.now();
  const child = spawnCli(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 20_000);
  return new Promise((res) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut });
    });
  });
}

/**
 * What the CLI printed as its error: from the first `bosun: ` or commander's `error: ` line on stderr
 * up to the first blank line (after which commander may print the usage).
 */
export function errorLine(r: CliResult): string {
  const lines = r.stderr.split('\n');
  const start = lines.findIndex((l) => /^(bosun|error): /.test(l));
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines
    .slice(start, end < 0 ? undefined : end)
    .join('\n')
    .trimEnd();
}

/** One bad-input case as the docs table shows it. */
export interface CaseRecord {
  /** Which test file and case. */
  id: string;
  /** What was wrong. */
  input: string;
  /** What the user saw, verbatim. */
  message: string;
  /** The object and field the message names. */
  names: string;
  /** The fix the message suggests. */
  fix: string;
  /** The parent's Ready condition and Warning Event, where an object is at fault. */
  parent?: string;
  /** What runs the case. */
  command: string;
}

/** Appends a case to $BOSUN_BADINPUT_RECORD (JSON lines), when set: docs/bad-input.md is written from it. */
export function recordCase(c: CaseRecord): void {
  const file = process.env.BOSUN_BADINPUT_RECORD;
  if (file) appendFileSync(file, `${JSON.stringify(c)}\n`);
}
