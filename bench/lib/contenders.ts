// The contenders: which there are, and each one's operator started as a process of its own against
// a run's cluster (the floors have none: the bench makes their writes itself).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OPERATOR_NODE_FLAGS } from '../../packages/bosun/src/tooling/image/operator.js';
import { ensurePeers } from '../peers.js';
import { NS } from './messages.js';

/** The contenders, in the order they are interleaved. */
export const CONTENDERS = ['floor', 'floor-running', 'bosun', 'kopf', 'controller-runtime'] as const;
/**
 * Contenders run only when named with --contenders: `bosun-base` is bosun built from another checkout
 * (BENCH_BOSUN_BASE_DIR, e.g. a `git worktree` of the previous release), for before/after in one run;
 * `bosun-http1` is this bosun on HTTP/1.1 keep-alive instead of HTTP/2.
 */
export const EXTRA_CONTENDERS = ['bosun-base', 'bosun-http1'] as const;
/** One contender's name. */
export type ContenderName = (typeof CONTENDERS)[number] | (typeof EXTRA_CONTENDERS)[number];

/** Workers per controller for bosun and controller-runtime alike (bosun's default). */
export const WORKERS = 16;
const ROOT = join(import.meta.dirname, '..', '..');

/** The built checkout `bosun-base` runs from. */
function baseDir(): string {
  const dir = process.env.BENCH_BOSUN_BASE_DIR;
  if (!dir)
    throw new Error(
      'the bosun-base contender needs BENCH_BOSUN_BASE_DIR: a built checkout of the version to compare with (git worktree add ../base <rev> && (cd ../base && npm ci && npx tsc -p tsconfig.build.json))',
    );
  return resolve(dir);
}

/** A contender started for a run: its process (none for the floors), and how to stop it. */
export interface RunningContender {
  child?: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `name`'s operator against the cluster of `kubeconfig`, watching the bench namespace with the same worker count for all. */
export async function startContender(name: ContenderName, kubeconfig: string): Promise<RunningContender> {
  let cmd: { command: string; args: string[]; env: Record<string, string | undefined>; cwd: string };
  if (name === 'bosun' || name === 'bosun-base' || name === 'bosun-http1') {
    // BENCH_BOSUN_DIR: the bosun and bosun-http1 contenders from another built checkout (by default this one).
    const root = name === 'bosun-base' ? baseDir() : resolve(process.env.BENCH_BOSUN_DIR || ROOT);
    // The workspace layout runs the compiled project module (no TypeScript loader in the measured process);
    // a base checkout from before it has the CLI at its root and the operators compiled into it.
    const workspace = existsSync(join(root, 'packages', 'bosun', 'bin', 'bosun.js'));
    const cli = workspace
      ? [join(root, 'packages', 'bosun', 'bin', 'bosun.js'), 'run', '--from', join(root, 'dist', 'operators', 'index.js')]
      : [join(root, 'bin', 'bosun.js'), 'run'];
    cmd = {
      command: process.execPath,
      // BENCH_BOSUN_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the contender, not the bench.
      args: [
        // As the operator image runs it; a flag repeated in the variables below overrides it (V8 keeps the last).
        ...OPERATOR_NODE_FLAGS,
        // BENCH_BOSUN_BASE_NODE_ARGS, when set, replaces them for bosun-base alone (an A/B of Node flags in one run).
        ...((name === 'bosun-base'
          ? (process.env.BENCH_BOSUN_BASE_NODE_ARGS ?? process.env.BENCH_BOSUN_NODE_ARGS)
          : process.env.BENCH_BOSUN_NODE_ARGS
        )
          ?.split(' ')
          .filter(Boolean) ?? []),
        ...cli,
        'message',
        '--kubeconfig',
        kubeconfig,
        '--standalone',
        '-n',
        NS,
        '--workers',
        String(WORKERS),
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
      ],
      env: { ...process.env, BOSUN_LOG_LEVEL: 'warn', ...(name === 'bosun-http1' ? { BOSUN_TRANSPORT: 'http1' } : {}) },
      cwd: root,
    };
  } else if (name === 'kopf' || name === 'controller-runtime') {
    const peers = await ensurePeers({ kubeconfig, namespace: NS, workers: WORKERS });
    cmd = name === 'kopf' ? peers.kopf : peers.controllerRuntime;
  } else {
    return { stop: async () => undefined };
  }
  const child = spawn(cmd.command, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (code !== null && code !== 0) process.stderr.write(`bench: ${name} exited with ${code ?? sig}: ${stderr}\n`);
  });
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
