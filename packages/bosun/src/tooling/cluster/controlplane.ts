// A local control plane in a directory of its own: up, down and status. What each program runs
// with is in programs.ts, their processes in supervise.ts, the directory's files in layout.ts.
import { mkdir, readFile, rm, rmdir, writeFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { withFileLock } from './lock.js';
import { resolvePrograms, type Progress, type ProgramPaths } from './binaries.js';
import { ClusterError } from './cluster-error.js';
import { adminGet, adminRequest, httpGet } from './http.js';
import { clusterPaths, exists, makeClusterDir } from './layout.js';
import { createPki, loadPki } from './pki.js';
import { choosePorts, type Ports } from './ports.js';
import { argsFor, NODE_NAME, nodeObject, SERVICE_IP, writeConfigs } from './programs.js';
import { ownsPid, startProgram, stopPids, waitFor, writePids, type Started } from './supervise.js';
import { DEFAULT_CLUSTER_DIR, KUBERNETES_VERSION, PROGRAMS, type ProgramName } from './versions.js';

export { ClusterError } from './cluster-error.js';
export { adminGet } from './http.js';
export { NODE_NAME } from './programs.js';

/** What `state.json` records about a running cluster. */
export interface ClusterState {
  dir: string;
  version: string;
  apiserverUrl: string;
  ports: Ports;
  pids: Partial<Record<ProgramName, number>>;
  startedAt: string;
  /** True when the cluster runs a real node (kubelet + containerd) beside kwok's fake one. */
  realNode?: boolean;
}

/** Options for `up`. */
export interface UpOptions {
  /** Cluster directory; default `.bosun/cluster`. */
  dir?: string;
  /** A fixed API server port; default a free one. */
  port?: number;
  /** Where progress lines go. */
  progress?: Progress;
  /** How long to wait for readiness before giving up, in ms. */
  timeoutMs?: number;
  /** `real` adds one real node (kubelet, containerd, runc, CNI) beside kwok's fake one; default kwok only. */
  node?: 'kwok' | 'real';
}

/** The outcome of `up`. */
export interface UpResult {
  state: ClusterState;
  kubeconfig: string;
  /** False when a running cluster was found and nothing was started. */
  started: boolean;
  /** Wall-clock time of `up`, in ms. */
  elapsedMs: number;
}

/** The status of one program of a cluster. */
export interface ProgramStatus {
  name: ProgramName;
  pid?: number;
  running: boolean;
  log: string;
}

/** What `status` reports. */
export interface ClusterStatus {
  dir: string;
  exists: boolean;
  state?: ClusterState;
  programs: ProgramStatus[];
  kubeconfig: string;
  apiserverReady: boolean;
}

async function readState(dir: string): Promise<ClusterState | undefined> {
  try {
    return JSON.parse(await readFile(clusterPaths(dir).state, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Reads what runs in a cluster directory: its state and which of its processes are alive. */
export async function status(dirIn = DEFAULT_CLUSTER_DIR): Promise<ClusterStatus> {
  const dir = resolve(dirIn);
  const p = clusterPaths(dir);
  const state = await readState(dir);
  const programs: ProgramStatus[] = [];
  for (const name of PROGRAMS) {
    let pid = state?.pids[name];
    if (pid === undefined) {
      const fromFile = Number((await readFile(join(p.pids, `${name}.pid`), 'utf8').catch(() => '')).trim());
      if (fromFile) pid = fromFile;
    }
    programs.push({ name, pid, running: pid !== undefined && (await ownsPid(dir, pid)), log: join(p.logs, `${name}.log`) });
  }
  let apiserverReady = false;
  const pki = await loadPki(dir);
  if (state && pki && programs.some((x) => x.name === 'kube-apiserver' && x.running)) {
    apiserverReady = await adminGet(`${state.apiserverUrl}/readyz`, pki, 2_000).then(
      (r) => r.status === 200,
      () => false,
    );
  }
  return { dir, exists: await exists(dir), state, programs, kubeconfig: p.kubeconfig, apiserverReady };
}

/**
 * Starts a local control plane in `dir` and waits until the API server is ready and the fake node
 * is Ready. A second call on a running directory reports it and starts nothing.
 */
export async function up(opts: UpOptions = {}): Promise<UpResult> {
  const dir = resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
  const progress = opts.progress ?? ((l) => process.stderr.write(`${l}\n`));
  await makeClusterDir(dir);
  // Two ups of one directory at once would both start programs on the same ports and data.
  return withFileLock(join(dir, 'cluster.lock'), progress, () => upLocked(dir, progress, opts));
}

async function upLocked(dir: string, progress: (line: string) => void, opts: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  const deadline = () => Date.now() + (opts.timeoutMs ?? 120_000);
  const p = clusterPaths(dir);

  const st = await status(dir);
  const running = st.programs.filter((x) => x.running);
  if (running.length === PROGRAMS.length && st.apiserverReady && st.state) {
    if (opts.node === 'real' && !st.state.realNode)
      throw new ClusterError(
        `the cluster in ${dir} runs without a real node, and its API server lacks the flags one needs. Stop it with: bosun cluster down --dir ${dir}   then run: bosun cluster up --node real --dir ${dir}`,
      );
    if (st.state.realNode) {
      // A control plane that outlived its real node (a crash, a kill): start the node again, undoing what the dead one left.
      const node = await import('../node/realnode.js');
      const pki = await loadPki(dir);
      if (pki && !(await node.realNodeStatus(dir)).every((x) => x.running)) {
        progress(`bosun: the cluster in ${dir} runs, but its real node does not; starting the real node again`);
        await node.startRealNode({ dir, pki, apiserverUrl: st.state.apiserverUrl, progress, timeoutMs: opts.timeoutMs });
        return { state: st.state, kubeconfig: p.kubeconfig, started: true, elapsedMs: Date.now() - t0 };
      }
    }
    progress(`bosun: the cluster in ${dir} is already running (API server ${st.state.apiserverUrl}); nothing started`);
    return { state: st.state, kubeconfig: p.kubeconfig, started: false, elapsedMs: Date.now() - t0 };
  }
  if (running.length > 0) {
    const dead = st.programs.filter((x) => !x.running).map((x) => x.name);
    throw new ClusterError(
      `the cluster in ${dir} is partly running (${running.map((x) => `${x.name} pid ${x.pid}`).join(', ')}; not running: ${dead.join(', ') || 'none, but the API server is not ready'}). ` +
        `Stop it with: bosun cluster down --dir ${dir}   then run up again.`,
    );
  }
  if (st.programs.some((x) => x.pid !== undefined)) {
    progress(`bosun: removing stale pid files in ${p.pids} (their processes are gone)`);
    await rm(p.pids, { recursive: true, force: true });
    await rm(p.state, { force: true });
  }

  const programs: ProgramPaths = await resolvePrograms({ progress });
  await mkdir(p.logs, { recursive: true });
  await mkdir(p.data, { recursive: true });
  let pki = await loadPki(dir);
  if (!pki) {
    if (await exists(p.etcdData)) {
      // Data without the certificates that signed its service-account tokens is unusable: start clean, loudly.
      progress(`bosun: ${p.etcdData} exists without the certificates of its cluster (a half-written directory); discarding it`);
      await rm(p.etcdData, { recursive: true, force: true });
    }
    pki = await createPki(dir, SERVICE_IP);
  }
  const ports = await choosePorts(dir, opts.port);
  await writeConfigs(dir, pki, ports);
  const apiserverUrl = `https://127.0.0.1:${ports.apiserver}`;
  const realNode = opts.node === 'real' ? await import('../node/realnode.js') : undefined;
  const apiserverExtra = realNode ? await realNode.apiserverFlags(dir, pki) : [];

  const started: Started[] = [];
  const pids: Partial<Record<ProgramName, number>> = {};
  const launch = (name: ProgramName): void => {
    let args = argsFor(name, dir, ports);
    if (name === 'kube-apiserver' && apiserverExtra.length) {
      const set = new Set(apiserverExtra.map((a) => a.split('=')[0]));
      args = [...args.filter((a) => !set.has(a.split('=')[0])), ...apiserverExtra];
    }
    const s = startProgram(dir, name, programs[name], args);
    started.push(s);
    pids[name] = s.pid;
  };
  const saveState = async (): Promise<ClusterState> => {
    const state: ClusterState = { dir, version: KUBERNETES_VERSION, apiserverUrl, ports, pids, startedAt: new Date(t0).toISOString() };
    if (realNode) state.realNode = true;
    await writePids(dir, pids);
    await writeFile(p.state, JSON.stringify(state, null, 2));
    return state;
  };

  progress(`bosun: starting etcd and kube-apiserver ${KUBERNETES_VERSION} in ${dir}`);
  launch('etcd');
  await saveState();
  await waitFor(
    'etcd to be healthy',
    deadline(),
    started,
    dir,
    async () => {
      const r = await httpGet(`http://127.0.0.1:${ports.etcdClient}/health`);
      return r.status === 200 && r.body.includes('"true"');
    },
    progress,
  );
  launch('kube-apiserver');
  await saveState();
  await waitFor(
    'kube-apiserver /readyz',
    deadline(),
    started,
    dir,
    async () => (await adminGet(`${apiserverUrl}/readyz`, pki)).status === 200,
    progress,
  );
  progress('bosun: API server ready; starting kube-controller-manager, kube-scheduler and kwok');
  launch('kube-controller-manager');
  launch('kube-scheduler');
  launch('kwok');
  await saveState();
  const nodeUrl = `${apiserverUrl}/api/v1/nodes/${NODE_NAME}`;
  if ((await adminGet(nodeUrl, pki)).status === 404) {
    const r = await adminRequest('POST', `${apiserverUrl}/api/v1/nodes`, pki, nodeObject());
    if (r.status >= 300 && r.status !== 409)
      throw new ClusterError(`could not create the fake node ${NODE_NAME}: HTTP ${r.status} ${r.body}`);
  }
  await waitFor(
    `node ${NODE_NAME} to be Ready`,
    deadline(),
    started,
    dir,
    async () => {
      const r = await adminGet(nodeUrl, pki);
      if (r.status !== 200) return false;
      const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    },
    progress,
  );
  // Pods are refused until the namespace's default ServiceAccount exists; wait so the first kubectl run works.
  await waitFor(
    'the default ServiceAccount',
    deadline(),
    started,
    dir,
    async () => (await adminGet(`${apiserverUrl}/api/v1/namespaces/default/serviceaccounts/default`, pki)).status === 200,
    progress,
  );
  if (realNode) {
    try {
      await realNode.startRealNode({ dir, pki, apiserverUrl, progress, timeoutMs: opts.timeoutMs });
    } catch (err) {
      // A half-started node holds host-wide state: undo it and stop the control plane, so the next up starts clean.
      await realNode.stopRealNode(dir, progress).catch(() => undefined);
      await stopPids(
        dir,
        started.map((x) => ({ name: x.name, pid: x.pid })),
      );
      throw err;
    }
  }
  const state = await saveState();
  const elapsedMs = Date.now() - t0;
  progress(`bosun: cluster up in ${(elapsedMs / 1000).toFixed(1)} s; export KUBECONFIG=${p.kubeconfig}`);
  return { state, kubeconfig: p.kubeconfig, started: true, elapsedMs };
}

/** Options for `down`. */
export interface DownOptions {
  dir?: string;
  /** Also delete the directory's data, certificates and logs. */
  purge?: boolean;
  progress?: Progress;
}

/** Stops exactly the processes this cluster directory started; with purge, removes the directory too. */
export async function down(opts: DownOptions = {}): Promise<string[]> {
  const dir = resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
  const progress = opts.progress ?? ((l) => process.stderr.write(`${l}\n`));
  if (!(await status(dir)).exists) {
    progress(`bosun: no cluster directory at ${dir}; nothing to stop`);
    return [];
  }
  const stopped = await withFileLock(join(dir, 'cluster.lock'), progress, () => downLocked(dir, progress, opts));
  if (opts.purge) await rmdir(dir).catch(() => undefined); // the lock file kept it until now
  return stopped;
}

async function downLocked(dir: string, progress: (line: string) => void, opts: DownOptions): Promise<string[]> {
  const st = await status(dir);
  if (!st.exists) {
    progress(`bosun: no cluster directory at ${dir}; nothing to stop`);
    return [];
  }
  const list = st.programs.filter((x) => x.pid !== undefined).map((x) => ({ name: x.name, pid: x.pid! }));
  // The real node goes first: its kubelet is a client of the API server, and its host state must be undone.
  const node = (await exists(join(dir, 'node'))) ? await import('../node/realnode.js') : undefined;
  const nodeStopped = node && (await node.hasRealNode(dir)) ? await node.stopRealNode(dir, progress) : [];
  const stopped = [...nodeStopped.filter((s) => / \(pid \d+\)$/.test(s)), ...(await stopPids(dir, list))];
  await rm(clusterPaths(dir).pids, { recursive: true, force: true });
  await rm(clusterPaths(dir).state, { force: true });
  progress(stopped.length ? `bosun: stopped ${stopped.join(', ')}` : `bosun: nothing was running in ${dir}`);
  if (opts.purge) {
    // Only remove what bosun writes, so a mistaken --dir cannot wipe unrelated files.
    const ours = new Set(['state.json', 'ports.json', 'kubeconfig', 'logs', 'pids', 'data', 'config', 'pki', 'node']);
    const entries = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(entries.filter((e) => ours.has(e)).map((e) => rm(join(dir, e), { recursive: true, force: true })));
    await rmdir(dir).catch(() => undefined); // left in place when it holds files of someone else's
    progress(`bosun: removed the cluster's data, certificates and logs in ${dir}`);
  }
  return stopped;
}
