// The programs of the real node that bosun builds itself from Go modules (the kubelet, kube-proxy,
// the pause program), cached beside the control plane's in the versioned cache and rebuilt when missing or broken.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { BinaryError, cacheDir, goBuild, type Progress } from '../cluster/binaries.js';
import { withFileLock } from '../cluster/lock.js';
import { KUBERNETES_VERSION } from '../cluster/versions.js';

const execFileP = promisify(execFile);

/** The version the pause program reports (tools/pause/main.go prints it). */
export const PAUSE_VERSION = '1';

/** A program of the real node that bosun builds. */
export type NodeProgram = 'kubelet' | 'kube-proxy' | 'pause';

interface Target {
  module: string;
  pkg: string;
  version: string;
  /** What `--version` prints when the binary is the pinned one. */
  reports: string;
  ldflags: string;
}

function kubeLdflags(): string {
  const v = KUBERNETES_VERSION;
  const [major, minor] = v.replace(/^v/, '').split('.');
  const parts = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'])
    parts.push(
      `-X ${pkg}.gitVersion=${v}`,
      `-X ${pkg}.gitMajor=${major ?? ''}`,
      `-X ${pkg}.gitMinor=${minor ?? ''}`,
      `-X ${pkg}.gitTreeState=clean`,
      `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
    );
  return parts.join(' ');
}

function target(name: NodeProgram): Target {
  return name !== 'pause'
    ? {
        module: 'controlplane',
        pkg: `k8s.io/kubernetes/cmd/${name}`,
        version: KUBERNETES_VERSION,
        reports: `Kubernetes ${KUBERNETES_VERSION}`,
        ldflags: kubeLdflags(),
      }
    : { module: 'pause', pkg: '.', version: PAUSE_VERSION, reports: `bosun pause ${PAUSE_VERSION}`, ldflags: '-s -w' };
}

/** The versioned cache path of one node program. */
export function nodeProgramPath(name: NodeProgram): string {
  return join(cacheDir(), 'bin', `${name}-${target(name).version}`, name);
}

async function works(name: NodeProgram, path: string): Promise<boolean> {
  try {
    const { stdout, stderr } = await execFileP(path, ['--version'], { timeout: 20_000 });
    return `${stdout}${stderr}`.includes(target(name).reports);
  } catch {
    return false;
  }
}

/** Finds the kubelet, kube-proxy and the pause program in the cache, building what is missing (the kubelet takes minutes the first time). */
export async function resolveNodePrograms(
  progress: Progress,
  names: readonly NodeProgram[] = ['pause', 'kubelet', 'kube-proxy'],
): Promise<Record<NodeProgram, string>> {
  const todo: NodeProgram[] = [];
  for (const n of names) if (!(await works(n, nodeProgramPath(n)))) todo.push(n);
  if (todo.length > 0) {
    await execFileP('go', ['version'], { timeout: 20_000 }).catch(() => {
      throw new BinaryError(
        `the real node's ${todo.join(' and ')} must be built from Go modules, but \`go\` is not on PATH. Install Go 1.25 or newer and run cluster up --node real again.`,
      );
    });
    // The control plane's builds take the same lock: two Go builds at once only slow each other down.
    await withFileLock(join(cacheDir(), 'build.lock'), progress, async () => {
      for (const n of todo) if (!(await works(n, nodeProgramPath(n)))) await build(n, progress);
    });
  }
  return { kubelet: nodeProgramPath('kubelet'), 'kube-proxy': nodeProgramPath('kube-proxy'), pause: nodeProgramPath('pause') };
}

async function build(name: NodeProgram, progress: Progress): Promise<void> {
  const t = target(name);
  const dest = nodeProgramPath(name);
  await goBuild({
    go: 'go',
    name,
    module: t.module,
    pkg: t.pkg,
    ldflags: t.ldflags,
    dest,
    progress,
    announce: `bosun: building ${name} ${t.version} from Go modules (first time only${name === 'pause' ? '' : '; minutes on 2 cores'})`,
  });
  if (!(await works(name, dest)))
    throw new BinaryError(`built ${name} at ${dest} does not report ${t.reports}; delete ${dirname(dest)} and try again`);
}
