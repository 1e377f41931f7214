// The control plane's processes: started detached with their output in the directory's logs, found
// again through pid files, and stopped only when they are this directory's own.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidAlive, type Progress } from './binaries.js';
import { ClusterError } from './cluster-error.js';
import { clusterPaths } from './layout.js';
import type { ProgramName } from './versions.js';
import { stillWaiting } from './waiting.js';

/** A program started by this process, and how it ended if it did. */
export interface Started {
  name: ProgramName;
  pid: number;
  exited: () => string | undefined;
}

/** Whether `pid` is alive and is a process this cluster directory started (its command line names the directory). */
export async function ownsPid(dir: string, pid: number): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(dir);
  } catch {
    // No /proc (not Linux): fall back to liveness alone.
    return true;
  }
}

/** Starts a program detached from this process, so the cluster outlives the command that started it. */
export function startProgram(dir: string, name: ProgramName, bin: string, args: string[]): Started {
  const p = clusterPaths(dir);
  const logPath = join(p.logs, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exitInfo: string | undefined;
  child.on('exit', (code, signal) => {
    exitInfo = `exited with ${signal ?? `code ${code ?? '?'}`}`;
  });
  child.on('error', (err) => {
    exitInfo = `could not start: ${err.message}`;
  });
  child.unref();
  if (child.pid === undefined) throw new ClusterError(`could not start ${name} (${bin}); check that it is executable`);
  return { name, pid: child.pid, exited: () => exitInfo };
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `check` until it holds, failing early (and stopping what was started) when a program exits or the deadline passes. */
export async function waitFor(
  what: string,
  deadline: number,
  started: Started[],
  dir: string,
  check: () => Promise<boolean>,
  progress: Progress,
): Promise<void> {
  const waiting = stillWaiting(progress, what);
  for (;;) {
    for (const s of started) {
      const info = s.exited();
      if (info !== undefined) {
        const log = join(clusterPaths(dir).logs, `${s.name}.log`);
        const hint =
          s.name === 'etcd'
            ? `The etcd data in ${clusterPaths(dir).etcdData} may be damaged (an interrupted earlier run?). To start over: bosun cluster down --dir ${dir} --purge`
            : `See ${log}. To start over: bosun cluster down --dir ${dir} --purge`;
        await stopPids(
          dir,
          started.map((x) => ({ name: x.name, pid: x.pid })),
        );
        throw new ClusterError(`${s.name} ${info} while waiting for ${what}. Last lines of ${log}:\n${await tail(log)}\n${hint}`);
      }
    }
    try {
      if (await check()) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stopPids(
        dir,
        started.map((x) => ({ name: x.name, pid: x.pid })),
      );
      throw new ClusterError(
        `timed out waiting for ${what}; logs are in ${clusterPaths(dir).logs}. Stopped what was started; try again, or start over with: bosun cluster down --dir ${dir} --purge`,
      );
    }
    waiting();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writes one pid file per program, which `status` falls back on when state.json is missing or was never written. */
export async function writePids(dir: string, pids: Partial<Record<ProgramName, number>>): Promise<void> {
  const p = clusterPaths(dir);
  await mkdir(p.pids, { recursive: true });
  await Promise.all(Object.entries(pids).map(([name, pid]) => writeFile(join(p.pids, `${name}.pid`), String(pid))));
}

/** Stops the listed processes that this directory owns, SIGKILL after `graceMs`; returns what it stopped. */
export async function stopPids(dir: string, list: { name: string; pid: number }[], graceMs = 10_000): Promise<string[]> {
  const stopped: string[] = [];
  // Stop in reverse start order so clients go before the API server and the API server before etcd.
  const ordered = [...list].reverse();
  for (const { name, pid } of ordered) {
    if (!(await ownsPid(dir, pid))) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    const until = Date.now() + graceMs;
    while (pidAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    stopped.push(`${name} (pid ${pid})`);
  }
  return stopped;
}
