import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, rm, rmdir, stat, writeFile, readdir } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { withFileLock } from './lock.js';
import { stillWaiting } from './waiting.js';
import { pidAlive, resolvePrograms, type Progress, type ProgramPaths } from './binaries.js';
import { KWOK_STAGES } from './kwok-stages.js';
import { createPki, loadPki, PKI_FILES, type CertPair, type ClusterPki } from './pki.js';
import { DEFAULT_CLUSTER_DIR, KUBERNETES_VERSION, PROGRAMS, type ProgramName } from './versions.js';
import { bosunError } from '../../errors.js';

/** The name of the one fake Node kwok manages. */
export const NODE_NAME = 'bosun-node-0';
const SERVICE_CIDR = '10.0.0.0/24';
const SERVICE_IP = '10.0.0.1';
const POD_CIDR = '10.64.0.1/10';

/** Raised for a bad state or bad input of a local cluster; the message names the problem and the way out. */
export class ClusterError extends bosunError('BOSUN_CLUSTER') {
  override name = 'ClusterError';
}

/** What `state.json` records about a running cluster. */
export interface ClusterState {
  dir: string;
  version: string;
  apiserverUrl: string;
  ports: Ports;
  pids: Partial<Record<ProgramName, number>>;
  startedAt: string;
}

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
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

function paths(dir: string) {
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

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function readState(dir: string): Promise<ClusterState | undefined> {
  try {
    return JSON.parse(await readFile(paths(dir).state, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and is a process this cluster directory started (its command line names the directory). */
async function ownsPid(dir: string, pid: number): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(dir);
  } catch {
    // No /proc (not Linux): fall back to liveness alone.
    return true;
  }
}

async function freePort(port = 0): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(p));
    });
  });
}

async function choosePorts(dir: string, fixedApiserver?: number): Promise<Ports> {
  if (fixedApiserver !== undefined) {
    if (!Number.isInteger(fixedApiserver) || fixedApiserver < 1 || fixedApiserver > 65535) {
      throw new ClusterError(`--port ${fixedApiserver} is not a TCP port; give a number from 1 to 65535, or omit --port to pick a free one`);
    }
    try {
      await freePort(fixedApiserver);
    } catch {
      throw new ClusterError(`port ${fixedApiserver} on 127.0.0.1 is already in use; choose another with --port, or omit --port to let bosun pick a free one`);
    }
  }
  // etcd remembers its peer URL in its data: keep its ports across restarts of the same directory when they are free.
  let previous: Partial<Ports> = {};
  try {
    previous = JSON.parse(await readFile(paths(dir).ports, 'utf8')) as Partial<Ports>;
  } catch {
    /* first start */
  }
  const reuse = async (p: number | undefined): Promise<number> => {
    if (p) {
      try {
        return await freePort(p);
      } catch {
        /* taken now: pick another */
      }
    }
    return freePort();
  };
  const ports: Ports = {
    etcdClient: await reuse(previous.etcdClient),
    etcdPeer: await reuse(previous.etcdPeer),
    apiserver: fixedApiserver ?? (await freePort()),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
  const all = Object.values(ports);
  if (new Set(all).size !== all.length) return choosePorts(dir, fixedApiserver);
  await writeFile(paths(dir).ports, JSON.stringify(ports));
  return ports;
}

function kubeconfigYaml(server: string, caPem: string, user: string, client: CertPair): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'bosun', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) } }],
    contexts: [{ name: 'bosun', context: { cluster: 'bosun', user, namespace: 'default' } }],
    'current-context': 'bosun',
  });
}

interface Started {
  name: ProgramName;
  pid: number;
  exited: () => string | undefined;
}

function startProgram(dir: string, name: ProgramName, bin: string, args: string[]): Started {
  const p = paths(dir);
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

/** Does one HTTPS GET against the API server with the admin certificate; resolves status and body. */
export function adminGet(url: string, pki: ClusterPki, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return adminRequest('GET', url, pki, undefined, timeoutMs);
}

function adminRequest(method: string, url: string, pki: ClusterPki, body: unknown, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return sendText(httpsRequest, url, { method, ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key, timeout: timeoutMs, headers: body ? { 'content-type': 'application/json' } : {} }, body);
}

function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  return sendText(httpRequest, url, { timeout: timeoutMs }, undefined);
}

// One request, the whole answer as text: all the control plane's own health checks need.
function sendText(
  send: typeof httpRequest | typeof httpsRequest,
  url: string,
  opts: RequestOptions,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = send(url, opts, (r) => {
      let data = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (data += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: data }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

async function waitFor(what: string, deadline: number, started: Started[], dir: string, check: () => Promise<boolean>, progress: Progress): Promise<void> {
  const waiting = stillWaiting(progress, what);
  for (;;) {
    for (const s of started) {
      const info = s.exited();
      if (info !== undefined) {
        const log = join(paths(dir).logs, `${s.name}.log`);
        const hint =
          s.name === 'etcd'
            ? `The etcd data in ${paths(dir).etcdData} may be damaged (an interrupted earlier run?). To start over: bosun cluster down --dir ${dir} --purge`
            : `See ${log}. To start over: bosun cluster down --dir ${dir} --purge`;
        await stopPids(dir, started.map((x) => ({ name: x.name, pid: x.pid })));
        throw new ClusterError(`${s.name} ${info} while waiting for ${what}. Last lines of ${log}:\n${await tail(log)}\n${hint}`);
      }
    }
    try {
      if (await check()) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stopPids(dir, started.map((x) => ({ name: x.name, pid: x.pid })));
      throw new ClusterError(`timed out waiting for ${what}; logs are in ${paths(dir).logs}. Stopped what was started; try again, or start over with: bosun cluster down --dir ${dir} --purge`);
    }
    waiting();
    await new Promise((r) => setTimeout(r, 100));
  }
}

function argsFor(name: ProgramName, dir: string, ports: Ports): string[] {
  const p = paths(dir);
  const pki = (f: string) => join(dir, 'pki', f);
  const kc = (who: string) => join(p.config, `${who}.kubeconfig`);
  switch (name) {
    case 'etcd':
      return [
        '--name=bosun',
        `--data-dir=${p.etcdData}`,
        `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-cluster=bosun=http://127.0.0.1:${ports.etcdPeer}`,
        // A disposable local cluster: skipping fsync makes it several times faster, and a crash only costs test data.
        '--unsafe-no-fsync',
        '--quota-backend-bytes=8589934592',
        '--log-level=warn',
      ];
    case 'kube-apiserver':
      return [
        `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
        `--secure-port=${ports.apiserver}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${join(dir, 'pki')}`,
        `--tls-cert-file=${pki(PKI_FILES.apiserverCert)}`,
        `--tls-private-key-file=${pki(PKI_FILES.apiserverKey)}`,
        `--client-ca-file=${pki(PKI_FILES.caCert)}`,
        `--service-account-key-file=${pki(PKI_FILES.saPub)}`,
        `--service-account-signing-key-file=${pki(PKI_FILES.saKey)}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--authorization-mode=RBAC',
        '--allow-privileged=true',
        '--profiling=false',
        '--v=0',
      ];
    case 'kube-controller-manager':
      return [
        `--kubeconfig=${kc('controller-manager')}`,
        `--authentication-kubeconfig=${kc('controller-manager')}`,
        `--authorization-kubeconfig=${kc('controller-manager')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.controllerManager}`,
        `--cert-dir=${join(dir, 'pki', 'controller-manager')}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${pki(PKI_FILES.saKey)}`,
        `--root-ca-file=${pki(PKI_FILES.caCert)}`,
        '--use-service-account-credentials=true',
        '--cluster-name=bosun',
        // The default 20 QPS makes garbage collection of thousands of Pods take minutes on a local cluster.
        '--kube-api-qps=500',
        '--kube-api-burst=1000',
        '--v=0',
      ];
    case 'kube-scheduler':
      return [
        `--config=${join(p.config, 'scheduler.yaml')}`,
        `--authentication-kubeconfig=${kc('scheduler')}`,
        `--authorization-kubeconfig=${kc('scheduler')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.scheduler}`,
        `--cert-dir=${join(dir, 'pki', 'scheduler')}`,
        '--v=0',
      ];
    case 'kwok':
      return [
        `--kubeconfig=${kc('kwok')}`,
        `--config=${join(p.config, 'kwok-stages.yaml')}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        `--cidr=${POD_CIDR}`,
        '--node-ip=10.64.0.1',
        `--server-address=127.0.0.1:${ports.kwok}`,
      ];
  }
}

async function writeConfigs(dir: string, pki: ClusterPki, ports: Ports): Promise<void> {
  const p = paths(dir);
  await mkdir(p.config, { recursive: true });
  const server = `https://127.0.0.1:${ports.apiserver}`;
  await Promise.all([
    writeFile(p.kubeconfig, kubeconfigYaml(server, pki.ca.cert, 'bosun-admin', pki.admin), { mode: 0o600 }),
    writeFile(join(p.config, 'controller-manager.kubeconfig'), kubeconfigYaml(server, pki.ca.cert, 'kube-controller-manager', pki.controllerManager), { mode: 0o600 }),
    writeFile(join(p.config, 'scheduler.kubeconfig'), kubeconfigYaml(server, pki.ca.cert, 'kube-scheduler', pki.scheduler), { mode: 0o600 }),
    writeFile(join(p.config, 'kwok.kubeconfig'), kubeconfigYaml(server, pki.ca.cert, 'kwok', pki.kwok), { mode: 0o600 }),
    writeFile(
      join(p.config, 'scheduler.yaml'),
      stringify({
        apiVersion: 'kubescheduler.config.k8s.io/v1',
        kind: 'KubeSchedulerConfiguration',
        // The shipped 50 QPS would make scheduling, not the operators, the bottleneck of every benchmark.
        clientConnection: { kubeconfig: join(p.config, 'scheduler.kubeconfig'), qps: 1000, burst: 2000 },
        leaderElection: { leaderElect: false },
      }),
    ),
    writeFile(join(p.config, 'kwok-stages.yaml'), KWOK_STAGES),
  ]);
}

function nodeObject() {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: NODE_NAME,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: { 'kubernetes.io/hostname': NODE_NAME, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
    },
    spec: {},
    status: {
      // Room for the benchmarks' 10,000 Pods on one fake node.
      allocatable: { cpu: '1000', memory: '4Ti', pods: '20000' },
      capacity: { cpu: '1000', memory: '4Ti', pods: '20000' },
    },
  };
}

async function writePids(dir: string, pids: Partial<Record<ProgramName, number>>): Promise<void> {
  const p = paths(dir);
  await mkdir(p.pids, { recursive: true });
  await Promise.all(Object.entries(pids).map(([name, pid]) => writeFile(join(p.pids, `${name}.pid`), String(pid))));
}

/** Reads what runs in a cluster directory: its state and which of its processes are alive. */
export async function status(dirIn = DEFAULT_CLUSTER_DIR): Promise<ClusterStatus> {
  const dir = resolve(dirIn);
  const p = paths(dir);
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
    apiserverReady = await adminGet(`${state.apiserverUrl}/readyz`, pki, 2_000).then((r) => r.status === 200, () => false);
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

/** Filesystems that cannot hold files of ours; Node's recursive mkdir loops forever under /proc. */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/**
 * Creates the cluster directory one level at a time, refusing at once (with the fix) a path under
 * a pseudo filesystem, below a file, or where nothing may be written.
 */
async function makeClusterDir(dir: string): Promise<void> {
  const fix = 'choose another --dir (a writable directory, e.g. .bosun/cluster)';
  const pseudo = PSEUDO_FS.find((p) => dir === p || dir.startsWith(`${p}/`));
  if (pseudo) throw new ClusterError(`cannot use ${dir} as the cluster directory: ${pseudo} is a kernel filesystem that cannot hold files; ${fix}`);
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? undefined : Promise.reject(err)));
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

async function upLocked(dir: string, progress: (line: string) => void, opts: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  const deadline = () => Date.now() + (opts.timeoutMs ?? 120_000);
  const p = paths(dir);

  const st = await status(dir);
  const running = st.programs.filter((x) => x.running);
  if (running.length === PROGRAMS.length && st.apiserverReady && st.state) {
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

  const started: Started[] = [];
  const pids: Partial<Record<ProgramName, number>> = {};
  const launch = (name: ProgramName): void => {
    const s = startProgram(dir, name, programs[name], argsFor(name, dir, ports));
    started.push(s);
    pids[name] = s.pid;
  };
  const saveState = async (): Promise<ClusterState> => {
    const state: ClusterState = { dir, version: KUBERNETES_VERSION, apiserverUrl, ports, pids, startedAt: new Date(t0).toISOString() };
    await writePids(dir, pids);
    await writeFile(p.state, JSON.stringify(state, null, 2));
    return state;
  };

  progress(`bosun: starting etcd and kube-apiserver ${KUBERNETES_VERSION} in ${dir}`);
  launch('etcd');
  await saveState();
  await waitFor('etcd to be healthy', deadline(), started, dir, async () => {
    const r = await httpGet(`http://127.0.0.1:${ports.etcdClient}/health`);
    return r.status === 200 && r.body.includes('"true"');
  }, progress);
  launch('kube-apiserver');
  await saveState();
  await waitFor('kube-apiserver /readyz', deadline(), started, dir, async () => (await adminGet(`${apiserverUrl}/readyz`, pki)).status === 200, progress);
  progress('bosun: API server ready; starting kube-controller-manager, kube-scheduler and kwok');
  launch('kube-controller-manager');
  launch('kube-scheduler');
  launch('kwok');
  await saveState();
  const nodeUrl = `${apiserverUrl}/api/v1/nodes/${NODE_NAME}`;
  if ((await adminGet(nodeUrl, pki)).status === 404) {
    const r = await adminRequest('POST', `${apiserverUrl}/api/v1/nodes`, pki, nodeObject());
    if (r.status >= 300 && r.status !== 409) throw new ClusterError(`could not create the fake node ${NODE_NAME}: HTTP ${r.status} ${r.body}`);
  }
  await waitFor(`node ${NODE_NAME} to be Ready`, deadline(), started, dir, async () => {
    const r = await adminGet(nodeUrl, pki);
    if (r.status !== 200) return false;
    const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }, progress);
  // Pods are refused until the namespace's default ServiceAccount exists; wait so the first kubectl run works.
  await waitFor('the default ServiceAccount', deadline(), started, dir, async () => (await adminGet(`${apiserverUrl}/api/v1/namespaces/default/serviceaccounts/default`, pki)).status === 200, progress);
  const state = await saveState();
  const elapsedMs = Date.now() - t0;
  progress(`bosun: cluster up in ${(elapsedMs / 1000).toFixed(1)} s; export KUBECONFIG=${p.kubeconfig}`);
  return { state, kubeconfig: p.kubeconfig, started: true, elapsedMs };
}

async function stopPids(dir: string, list: { name: string; pid: number }[], graceMs = 10_000): Promise<string[]> {
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
  const stopped = await stopPids(dir, list);
  await rm(paths(dir).pids, { recursive: true, force: true });
  await rm(paths(dir).state, { force: true });
  progress(stopped.length ? `bosun: stopped ${stopped.join(', ')}` : `bosun: nothing was running in ${dir}`);
  if (opts.purge) {
    // Only remove what bosun writes, so a mistaken --dir cannot wipe unrelated files.
    const ours = new Set(['state.json', 'ports.json', 'kubeconfig', 'logs', 'pids', 'data', 'config', 'pki']);
    const entries = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(entries.filter((e) => ours.has(e)).map((e) => rm(join(dir, e), { recursive: true, force: true })));
    await rmdir(dir).catch(() => undefined); // left in place when it holds files of someone else's
    progress(`bosun: removed the cluster's data, certificates and logs in ${dir}`);
  }
  return stopped;
}
