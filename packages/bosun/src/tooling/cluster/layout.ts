// The cluster directory: where each of its files lives, and creating it without hanging or
// half-failing on a path that can never hold it.
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ClusterError } from './cluster-error.js';

/** The files and folders of the cluster directory `dir`, so every part names them alike. */
export function clusterPaths(dir: string) {
  return {
    state: join(dir, 'state.json'),
    ports: join(dir, 'ports.json'),
    kubeconfig: join(dir, 'kubeconfig'),
    logs: join(dir, 'logs'),
    pids: join(dir, 'pids'),
    data: join(dir, 'data'),
    etcdData: join(dir, 'data', 'etcd'),
    config: join(dir, 'config'),
  };
}

/** Whether `p` exists, for the checks that only need a yes or no. */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Filesystems that cannot hold files of ours; Node's recursive mkdir loops forever under /proc. */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/**
 * Creates the cluster directory one level at a time, refusing at once (with the fix) a path under
 * a pseudo filesystem, below a file, or where nothing may be written.
 */
export async function makeClusterDir(dir: string): Promise<void> {
  const fix = 'choose another --dir (a writable directory, e.g. .bosun/cluster)';
  const pseudo = PSEUDO_FS.find((p) => dir === p || dir.startsWith(`${p}/`));
  if (pseudo)
    throw new ClusterError(`cannot use ${dir} as the cluster directory: ${pseudo} is a kernel filesystem that cannot hold files; ${fix}`);
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) =>
      err.code === 'ENOENT' || err.code === 'ENOTDIR' ? undefined : Promise.reject(err),
    );
    if (st) {
      if (!st.isDirectory()) throw new ClusterError(`cannot use ${dir} as the cluster directory: ${at} is a file, not a directory; ${fix}`);
      break;
    }
    missing.unshift(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of missing) {
    await mkdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return;
      throw new ClusterError(`cannot create the cluster directory ${d}: ${err.code ?? err.message}; ${fix}`);
    });
  }
  await access(dir, fsConstants.W_OK).catch(() => {
    throw new ClusterError(`the cluster directory ${dir} is not writable; ${fix}`);
  });
}
