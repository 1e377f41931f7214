// What a process has cost, read from /proc: the figures no client library reports for another process.
import { readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** Peak resident memory (VmHWM) of a process, MiB; undefined when it is gone or there is no /proc. */
export function peakRssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far; undefined when it is gone or there is no /proc. */
export function procCpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone, so sums over a cluster's programs still add up. */
export function cpuSeconds(pid: number | undefined): number {
  return procCpuSeconds(pid) ?? 0;
}
