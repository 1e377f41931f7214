// Killing and restarting one program of a local control plane, as a fault scenario does to
// kube-apiserver. The program is started again from the command line the running one was
// started with (read from /proc), so it keeps the flags `up` gave it; the pid files and
// state.json are updated so `down` stops the new process, not the dead one.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { adminGet, type ClusterState } from '../../../packages/bosun/src/tooling/cluster/controlplane.js';
import { pidAlive } from '../../../packages/bosun/src/tooling/cluster/binaries.js';
import { loadPki } from '../../../packages/bosun/src/tooling/cluster/pki.js';
import type { ProgramName } from '../../../packages/bosun/src/tooling/cluster/versions.js';

/** Raised when a program of a fault cluster cannot be found, stopped or started again; names the program and the directory. */
export class RestartError extends Error {
  override name = 'RestartError';
}

/** How one program of a cluster was started: its executable and its arguments. */
export interface ProgramCommand {
  pid: number;
  bin: string;
  args: string[];
}

async function readState(dir: string): Promise<ClusterState> {
  try {
    return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as ClusterState;
  } catch (err) {
    throw new RestartError(`no state.json in ${dir} (${(err as Error).message}); start the cluster with up({ dir }) first`);
  }
}

/** The running program's pid and the command line it was started with. */
export async function programCommand(dirIn: string, name: ProgramName): Promise<ProgramCommand> {
  const dir = resolve(dirIn);
  const pid = (await readState(dir)).pids[name];
  if (pid === undefined || !pidAlive(pid))
    throw new RestartError(`${name} of the cluster in ${dir} is not running (pid ${pid ?? 'none'}); bring the cluster up first`);
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  if (!argv.some((a) => a.includes(dir)))
    throw new RestartError(`pid ${pid} recorded for ${name} in ${dir} is another process now; the cluster's state is stale`);
  return { pid, bin: argv[0]!, args: argv.slice(1) };
}

/** Sends `signal` to the program and, unless the signal only pauses it, waits until it is gone. */
export async function signalProgram(dir: string, name: ProgramName, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<ProgramCommand> {
  const cmd = await programCommand(dir, name);
  process.kill(cmd.pid, signal);
  if (signal === 'SIGSTOP' || signal === 'SIGCONT') return cmd;
  const until = Date.now() + timeoutMs;
  while (pidAlive(cmd.pid)) {
    if (Date.now() > until) throw new RestartError(`${name} (pid ${cmd.pid}) in ${dir} still runs ${timeoutMs} ms after ${signal}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return cmd;
}

/**
 * Replaces or adds `--flag=value` arguments: a flag given in `extra` replaces every argument of the
 * same flag in `args`; `--flag` alone (no `=`) is added as it is.
 */
export function withArgs(args: string[], extra: string[]): string[] {
  const flag = (a: string) => a.split('=')[0]!;
  const replaced = new Set(extra.map(flag));
  return [...args.filter((a) => !replaced.has(flag(a))), ...extra];
}

/** Starts `cmd` detached with its output appended to the program's log, and records its pid for `down`. */
export async function startProgram(dirIn: string, name: ProgramName, cmd: { bin: string; args: string[] }): Promise<number> {
  const dir = resolve(dirIn);
  const fd = openSync(join(dir, 'logs', `${name}.log`), 'a');
  const child = spawn(cmd.bin, cmd.args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new RestartError(`could not start ${name} (${cmd.bin}) in ${dir}`);
  const state = await readState(dir);
  state.pids[name] = child.pid;
  await writeFile(join(dir, 'pids', `${name}.pid`), String(child.pid));
  await writeFile(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  return child.pid;
}

/** Waits until the cluster's API server answers /readyz with 200; resolves the ms it took. */
export async function waitApiserverReady(dirIn: string, timeoutMs = 60_000): Promise<number> {
  const dir = resolve(dirIn);
  const state = await readState(dir);
  const pki = await loadPki(dir);
  if (!pki) throw new RestartError(`no certificates in ${dir}/pki; the cluster directory is incomplete`);
  const t0 = performance.now();
  for (;;) {
    const ok = await adminGet(`${state.apiserverUrl}/readyz`, pki, 2_000).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return performance.now() - t0;
    const pid = state.pids['kube-apiserver'];
    if (pid !== undefined && !pidAlive(pid))
      throw new RestartError(`kube-apiserver (pid ${pid}) exited while starting; see ${join(dir, 'logs', 'kube-apiserver.log')}`);
    if (performance.now() - t0 > timeoutMs)
      throw new RestartError(
        `kube-apiserver in ${dir} not ready ${timeoutMs} ms after its start; see ${join(dir, 'logs', 'kube-apiserver.log')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a restart of kube-apiserver took. */
export interface ApiserverRestart {
  /** The pid of the new process. */
  pid: number;
  /** From the signal to the old process until the new one answered /readyz, in ms. */
  downMs: number;
  /** When the new process was started. */
  startedAt: Date;
  /** When the new process first answered /readyz with 200. */
  readyAt: Date;
}

/**
 * Stops kube-apiserver with `signal` (SIGKILL by default: a crash, no graceful shutdown), starts it
 * again with the same command line plus `extraArgs` (see `withArgs`), and waits until it is ready.
 * `pauseMs` keeps it down that long before the start.
 */
export async function restartApiserver(
  dir: string,
  opts: { signal?: NodeJS.Signals; extraArgs?: string[]; pauseMs?: number } = {},
): Promise<ApiserverRestart> {
  const t0 = performance.now();
  const cmd = await signalProgram(dir, 'kube-apiserver', opts.signal ?? 'SIGKILL');
  if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
  const startedAt = new Date();
  const pid = await startProgram(dir, 'kube-apiserver', { bin: cmd.bin, args: withArgs(cmd.args, opts.extraArgs ?? []) });
  await waitApiserverReady(dir);
  return { pid, downMs: performance.now() - t0, startedAt, readyAt: new Date() };
}
