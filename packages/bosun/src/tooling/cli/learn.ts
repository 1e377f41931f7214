// `bosun learn <n>`: runs one step of the learning path (docs/learn) on a cluster and checks that each command
// shows what the step's pages promise. The commands, and the output they promise, live in one file,
// docs/learn/steps.yaml: this runner executes it, the pages quote it (their "Run it" block is rendered from it
// and a test compares), so a page cannot promise what the runner does not check.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { parse } from 'yaml';
import { bosunError } from '../../errors.js';
import { DEFAULT_CLUSTER_DIR } from '../cluster/versions.js';

/** A learning-path step or command that cannot be run as written: names the step, the field and the fix. */
export class LearnError extends bosunError('BOSUN_LEARN') {
  override name = 'LearnError';
}

/** The two languages every page and every line of steps.yaml is written in. */
export const LEARN_LANGS = ['en', 'ko'] as const;
/** One of LEARN_LANGS. */
export type LearnLang = (typeof LEARN_LANGS)[number];
/** A text in both languages. */
export type LearnText = Record<LearnLang, string>;

/** Output a command must show: a fragment that must appear, or one that must appear exactly `times` times. */
export type Expectation = string | { text: string; times: number };

/** One command of a step: run to completion (`run`), or started in the background (`start`) until the step ends. */
export interface LearnCommand {
  /** What the command is for, one sentence per language. */
  say: LearnText;
  /** A shell command run to completion. */
  run?: string;
  /** A shell command started in the background (an operator, a service), stopped with SIGTERM when the step ends. */
  start?: string;
  /** With `start`: the output line fragment that means it is ready; the next command waits for it. */
  ready?: string;
  /** With `start`: what its output must hold by the time the step ends. */
  logs?: Expectation[];
  /** With `run`: what its output (stdout and stderr) must hold. */
  expect?: Expectation[];
  /** With `run`: fragments its output must not hold. */
  absent?: string[];
  /** With `run`: the command must fail (a refusal is the lesson). */
  fails?: boolean;
  /** Seconds before the command (or, with `start`, its readiness) counts as hung; default 120. */
  timeout?: number;
}

/** One step of the learning path: its pages are docs/learn/NN-<slug>.<lang>.md. */
export interface LearnStep {
  step: number;
  slug: string;
  title: LearnText;
  /** A namespace the runner deletes and creates afresh before the commands. */
  namespace?: string;
  commands: LearnCommand[];
  /** Commands that remove what the step left behind; printed, and run by the test (never by `bosun learn`). */
  cleanup?: string[];
}

const STEPS_FILE = join('docs', 'learn', 'steps.yaml');

/** The repository checkout holding docs/learn/steps.yaml: above this module, else above the working directory. */
export function learnRoot(from = process.cwd()): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), resolve(from)]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, STEPS_FILE))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new LearnError(
    `no ${STEPS_FILE} above ${resolve(from)}: the learning path runs in a clone of the bosun repository. Fix: cd into the clone, then make learn STEP=1`,
  );
}

function text(v: unknown, where: string): LearnText {
  const o = v as Partial<LearnText> | undefined;
  for (const l of LEARN_LANGS)
    if (typeof o?.[l] !== 'string' || !o[l].trim())
      throw new LearnError(`${where}.${l} is missing. Fix: give it in both languages (en, ko)`);
  return { en: o!.en!, ko: o!.ko! };
}

/** Reads and checks docs/learn/steps.yaml: steps numbered 1..n in order, each command either `run` or `start`. */
export function loadSteps(root = learnRoot()): LearnStep[] {
  const file = join(root, STEPS_FILE);
  if (!existsSync(file)) throw new LearnError(`${file} does not exist. Fix: run from a clone of the bosun repository`);
  const doc = parse(readFileSync(file, 'utf8')) as { steps?: unknown[] } | null;
  if (!Array.isArray(doc?.steps)) throw new LearnError(`${file}: no steps list. Fix: a top-level 'steps:' list`);
  return doc.steps.map((raw, i) => {
    const s = raw as Partial<LearnStep>;
    const where = `${file}: steps[${i}]`;
    if (s.step !== i + 1) throw new LearnError(`${where}.step is ${String(s.step)}. Fix: number the steps 1, 2, 3… in order`);
    if (typeof s.slug !== 'string' || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(s.slug))
      throw new LearnError(`${where}.slug ${JSON.stringify(s.slug)} is not kebab-case. Fix: e.g. slug: a-crd-by-hand`);
    if (!Array.isArray(s.commands) || !s.commands.length) throw new LearnError(`${where}.commands is empty. Fix: at least one command`);
    const commands = s.commands.map((c, j) => {
      const w = `${where}.commands[${j}]`;
      if ((c.run === undefined) === (c.start === undefined))
        throw new LearnError(`${w} has ${c.run === undefined ? 'neither' : 'both'} run and start. Fix: exactly one of them`);
      if (c.start !== undefined && !c.ready) throw new LearnError(`${w}.ready is missing. Fix: the output line that says it started`);
      if (c.fails && !c.expect?.length) throw new LearnError(`${w}.expect is empty. Fix: quote the refusal a failing command must print`);
      for (const e of [...(c.expect ?? []), ...(c.logs ?? [])])
        if (typeof e !== 'string' && (typeof e?.text !== 'string' || !Number.isInteger(e.times)))
          throw new LearnError(`${w}: expectation ${JSON.stringify(e)}. Fix: a string, or { text, times }`);
      return { ...c, say: text(c.say, `${w}.say`) };
    });
    return { ...s, step: s.step, slug: s.slug, title: text(s.title, `${where}.title`), commands } as LearnStep;
  });
}

/** The page of a step in a language, relative to the repository root. */
export function pagePath(step: LearnStep, lang: LearnLang): string {
  return join('docs', 'learn', `${String(step.step).padStart(2, '0')}-${step.slug}.${lang}.md`);
}

function expectationText(e: Expectation): string {
  return typeof e === 'string' ? e : e.text;
}

function shown(e: Expectation, lang: LearnLang): string {
  if (typeof e === 'string') return `\`${e}\``;
  return lang === 'en' ? `\`${e.text}\` (exactly ${e.times}×)` : `\`${e.text}\` (정확히 ${e.times}번)`;
}

const WORDS: Record<LearnLang, Record<'start' | 'logs' | 'shows' | 'fails' | 'absent' | 'cleanup', string>> = {
  en: {
    start: 'Started in the background (to type it yourself, use a second terminal and leave out the `&`); ready when it prints',
    logs: 'By the end of the step its log holds',
    shows: 'Shows',
    fails: 'Must fail, with',
    absent: 'never',
    cleanup: 'To remove what the step left behind:',
  },
  ko: {
    start: '백그라운드에서 시작합니다(직접 입력할 때는 터미널을 하나 더 열고 `&` 없이 실행하세요). 다음 줄이 나오면 준비된 것입니다:',
    logs: '단계가 끝날 때까지 로그에 나와야 하는 것:',
    shows: '출력에 나오는 것:',
    fails: '실패해야 맞습니다. 거절 메시지:',
    absent: '나오면 안 되는 것:',
    cleanup: '이 단계가 남긴 것을 지우려면:',
  },
};

function intro(step: LearnStep, lang: LearnLang): string {
  const cmd = `\`make learn STEP=${step.step}\``;
  const alt = `\`bosun learn ${step.step}\``;
  const ns = step.namespace ? `\`${step.namespace}\`` : '';
  if (lang === 'en')
    return `${cmd} (or ${alt}) ${ns ? `deletes and recreates the namespace ${ns}, then ` : ''}runs these in order, and stops at the first one that does not show what it promises:`;
  return `${cmd} 명령은(${alt}도 같습니다) ${ns ? `${ns} 네임스페이스를 지우고 새로 만든 다음 ` : ''}아래 명령을 차례로 실행합니다. 약속한 출력이 나오지 않으면 그 명령에서 멈춥니다.`;
}

// How a reader types the same commands: the local cluster's kubeconfig, and bosun through npx.
function byHand(step: LearnStep, lang: LearnLang): string {
  const usesBosun = step.commands.some((c) => /(^|\s)bosun\s/.test(c.run ?? c.start ?? ''));
  const kc = '`export KUBECONFIG=$PWD/.bosun/cluster/kubeconfig`';
  if (lang === 'en') return `To type them yourself, first ${kc}${usesBosun ? '; `bosun` is `npx bosun`' : ''}.`;
  return `직접 입력하려면 먼저 ${kc}를 실행하세요.${usesBosun ? ' `bosun`은 `npx bosun`입니다.' : ''}`;
}

/** The "Run it" block of a step's page: the one command, then every command it runs and what each must show. */
export function renderRunBlock(step: LearnStep, lang: LearnLang): string {
  const w = WORDS[lang];
  const lines = [
    `<!-- learn:begin step ${step.step}: rendered from docs/learn/steps.yaml; edit that file, then run: node --import tsx test/learn/pages.ts --write -->`,
    '```bash',
    `make learn STEP=${step.step}`,
    '```',
    '',
    byHand(step, lang),
    '',
    intro(step, lang),
    '',
  ];
  step.commands.forEach((c, i) => {
    lines.push(`${i + 1}. ${c.say[lang]}`, '   ```bash', `   ${c.run ?? `${c.start} &`}`, '   ```');
    const notes: string[] = [];
    if (c.start !== undefined) {
      notes.push(`${w.start} \`${c.ready}\`.`);
      if (c.logs?.length) notes.push(`${w.logs} ${c.logs.map((e) => shown(e, lang)).join(', ')}.`);
    } else {
      const parts: string[] = [];
      const e = (c.expect ?? []).map((x) => shown(x, lang)).join(', ');
      if (e) parts.push(`${c.fails ? w.fails : w.shows} ${e}`);
      if (c.absent?.length) parts.push(`${w.absent} ${c.absent.map((a) => `\`${a}\``).join(', ')}`);
      if (parts.length) notes.push(`${parts.join(lang === 'en' ? '; ' : '. ')}.`);
    }
    if (notes.length) lines.push(`   ${notes.join(' ')}`);
  });
  if (step.cleanup?.length) lines.push('', w.cleanup, '', '```bash', ...step.cleanup, '```');
  lines.push('<!-- learn:end -->');
  return lines.join('\n');
}

/** Where a step runs: the cluster, the repository, and where its output goes. */
export interface RunStepOptions {
  /** The repository checkout (commands run there). */
  root: string;
  /** The admin kubeconfig every command gets as $KUBECONFIG. */
  kubeconfig: string;
  /** The bosun cluster directory, when the kubeconfig is one: envtest tests (step 9) reuse that cluster. */
  clusterDir?: string;
  /** Each line of output, the runner's own and the commands'. */
  print(line: string): void;
}

/** The outcome of one step: ok, or what did not show what it promised (with the output that was seen). */
export interface StepResult {
  ok: boolean;
  failures: string[];
  /** Each command's combined output, in order. */
  outputs: { command: string; output: string; code: number | null }[];
}

function missing(output: string, expect: Expectation[] = []): string[] {
  const out: string[] = [];
  for (const e of expect) {
    const t = expectationText(e);
    const n = output.split(t).length - 1;
    if (typeof e === 'string' ? n === 0 : n !== e.times)
      out.push(typeof e === 'string' ? `no ${JSON.stringify(t)}` : `${JSON.stringify(t)} ${n} times, not ${e.times}`);
  }
  return out;
}

/** A process started in its own process group, so a shell wrapper and what it started stop together. */
interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function spawnShell(command: string, o: RunStepOptions, env: NodeJS.ProcessEnv, prefix: string): Spawned {
  const child = spawn('bash', ['-c', command], { cwd: o.root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let partial = '';
  const onData = (d: Buffer) => {
    const s = d.toString('utf8');
    out += s;
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) o.print(`${prefix}${l}`);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((res) => {
    child.once('close', (code) => {
      if (partial) o.print(`${prefix}${partial}`);
      partial = '';
      res(code);
    });
    child.once('error', () => res(null));
  });
  return { child, output: () => out, exited };
}

function signalGroup(p: Spawned, sig: NodeJS.Signals): void {
  try {
    if (p.child.pid) process.kill(-p.child.pid, sig);
  } catch {
    // Already gone.
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

// `bosun` in a command is the bosun running this step: from the sources under tsx, else the compiled CLI.
async function bosunShim(root: string): Promise<string> {
  const bin = join(root, '.bosun', 'learn', 'bin');
  await mkdir(bin, { recursive: true });
  const fromSources = import.meta.url.endsWith('.ts');
  const target = fromSources
    ? `--import tsx "${join(root, 'packages/bosun/src/tooling/cli/run-main.ts')}"`
    : `"${join(root, 'packages/bosun/bin/bosun.js')}"`;
  await writeFile(join(bin, 'bosun'), `#!/bin/sh\nexec "${process.execPath}" ${target} "$@"\n`);
  await chmod(join(bin, 'bosun'), 0o755);
  return bin;
}

/** Runs one step's commands in order, checking each one's output, and stops what it started in the background. */
export async function runStep(step: LearnStep, o: RunStepOptions): Promise<StepResult> {
  const result: StepResult = { ok: true, failures: [], outputs: [] };
  const scratch = join(o.root, '.bosun', 'learn', String(step.step));
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: o.kubeconfig,
    PATH: `${await bosunShim(o.root)}:${process.env.PATH ?? ''}`,
    // Operator logs as readable lines, as in a terminal (the runner reads them through a pipe).
    BOSUN_LOG_FORMAT: process.env.BOSUN_LOG_FORMAT ?? 'text',
    ...(o.clusterDir ? { BOSUN_TEST_CLUSTER_DIR: resolve(o.clusterDir) } : {}),
  };
  // Set when this runs under node --test: a `node --test` in a step would report to that runner instead of printing.
  delete env.NODE_TEST_CONTEXT;
  const fail = (what: string) => {
    result.ok = false;
    result.failures.push(what);
    o.print(`✗ ${what}`);
  };
  const runQuiet = async (command: string, timeoutMs: number) => {
    const p = spawnShell(command, { ...o, print: () => {} }, env, '');
    const code = await withTimeout(p.exited, timeoutMs);
    if (code === 'timeout') signalGroup(p, 'SIGKILL');
    return { code, output: p.output() };
  };
  o.print(`== step ${step.step}: ${step.title.en} / ${step.title.ko}`);
  if (step.namespace) {
    const ns = step.namespace;
    o.print(`(namespace ${ns}: deleted and created afresh)`);
    const del = await runQuiet(`kubectl delete namespace ${ns} --ignore-not-found --wait=true --timeout=120s`, 130_000);
    const create = await runQuiet(
      `kubectl create namespace ${ns} && for i in $(seq 100); do kubectl get serviceaccount default -n ${ns} >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1`,
      60_000,
    );
    if (del.code !== 0 || create.code !== 0) {
      fail(`could not recreate namespace ${ns}: ${del.output}${create.output}`.trim());
      return result;
    }
  }
  const background: { c: LearnCommand; p: Spawned }[] = [];
  try {
    for (const c of step.commands) {
      const timeoutMs = (c.timeout ?? 120) * 1000;
      if (c.start !== undefined) {
        o.print(`$ ${c.start} &`);
        const p = spawnShell(c.start, o, env, '  | ');
        background.push({ c, p });
        const ready = await withTimeout(
          new Promise<boolean>((res) => {
            const check = () => (p.output().includes(c.ready!) ? res(true) : undefined);
            p.child.stdout!.on('data', check);
            p.child.stderr!.on('data', check);
            void p.exited.then(() => res(p.output().includes(c.ready!)));
            check();
          }),
          timeoutMs,
        );
        if (ready !== true) {
          fail(
            `${c.start}: ${ready === 'timeout' ? `no ${JSON.stringify(c.ready)} within ${timeoutMs / 1000} s` : 'exited before it was ready'}`,
          );
          break;
        }
        continue;
      }
      o.print(`$ ${c.run}`);
      const p = spawnShell(c.run!, o, env, '  ');
      const code = await withTimeout(p.exited, timeoutMs);
      if (code === 'timeout') signalGroup(p, 'SIGKILL');
      const output = p.output();
      result.outputs.push({ command: c.run!, output, code: code === 'timeout' ? null : code });
      const problems: string[] = [];
      if (code === 'timeout') problems.push(`still running after ${timeoutMs / 1000} s`);
      else if (c.fails ? code === 0 : code !== 0) problems.push(c.fails ? 'succeeded, but must fail' : `exited ${code}`);
      problems.push(...missing(output, c.expect));
      for (const a of c.absent ?? []) if (output.includes(a)) problems.push(`${JSON.stringify(a)} is there, and must not be`);
      if (problems.length) {
        fail(`${c.run}: ${problems.join('; ')}`);
        break;
      }
      for (const e of c.expect ?? []) o.print(`  ✓ ${expectationText(e)}`);
    }
  } finally {
    // Stopped in reverse: the operator before the service it calls.
    for (const { c, p } of background.reverse()) {
      signalGroup(p, 'SIGTERM');
      if ((await withTimeout(p.exited, 30_000)) === 'timeout') {
        signalGroup(p, 'SIGKILL');
        await p.exited;
      }
      result.outputs.push({ command: `${c.start} &`, output: p.output(), code: p.child.exitCode });
      if (result.ok) {
        const problems = missing(p.output(), c.logs);
        if (problems.length) fail(`${c.start} (its log): ${problems.join('; ')}`);
        else for (const e of c.logs ?? []) o.print(`  ✓ [log] ${expectationText(e)}`);
      }
    }
  }
  if (result.ok) {
    o.print(`== step ${step.step}: every command showed what the page promises (docs/learn/${pagePath(step, 'en').split('/').pop()})`);
    if (step.cleanup?.length) o.print(`to clean up: ${step.cleanup.join(' && ')}`);
  }
  return result;
}

function stepArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a step is a whole number, 1 or more (bosun learn lists them)');
  return n;
}

/** `bosun learn`: list the steps of the learning path, or run one on the local cluster. */
export function learnCommand(): Command {
  return (
    new Command('learn')
      .description('the learning path (docs/learn): run one step on the local cluster and check it shows what its page says')
      .argument('[step]', 'the step to run (without it: the list of steps)', stepArg)
      /** The local cluster to run on, started if it is not running. */
      .option('--dir <dir>', 'cluster directory (started when not running)', DEFAULT_CLUSTER_DIR)
      /** Another cluster instead of the local one; nothing is started. */
      .option('--kubeconfig <path>', 'run against this kubeconfig instead of the local cluster')
      .addHelpText('after', '\nExamples:\n  bosun learn\n  bosun learn 1\n  make learn STEP=4')
      .action(async (n: number | undefined, o: { dir: string; kubeconfig?: string }) => {
        const root = learnRoot();
        const steps = loadSteps(root);
        if (n === undefined) {
          for (const s of steps)
            process.stdout.write(`${String(s.step).padStart(2)}  ${s.title.en} / ${s.title.ko}  (${pagePath(s, 'en')})\n`);
          return;
        }
        const step = steps[n - 1];
        if (!step) throw new InvalidArgumentError(`there is no step ${n}; the steps are 1 to ${steps.length}`);
        let kubeconfig = o.kubeconfig;
        let clusterDir: string | undefined;
        if (!kubeconfig) {
          const { up } = await import('../cluster/controlplane.js');
          const r = await up({ dir: o.dir });
          kubeconfig = r.kubeconfig;
          clusterDir = o.dir;
        }
        const r = await runStep(step, { root, kubeconfig, clusterDir, print: (l) => process.stdout.write(`${l}\n`) });
        if (!r.ok) {
          throw new LearnError(
            `step ${n} did not show what ${pagePath(step, 'en')} promises: ${r.failures.join('; ')}. Fix: read the output above; if the cluster is in a bad state, bosun cluster down --dir ${o.dir} and try again`,
          );
        }
      })
  );
}
