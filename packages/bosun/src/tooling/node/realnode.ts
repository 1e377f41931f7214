// One real node beside kwok's fake one: containerd (with runc and CNI bridge networking) and a kubelet,
// all under `<cluster dir>/node`, registered with the cluster's API server as a tainted Node. The
// host-wide state they change is recorded first and undone by stop (see host.ts).
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { pidAlive, type Progress } from '../cluster/binaries.js';
import { ClusterError } from '../cluster/cluster-error.js';
import { adminGet } from '../cluster/http.js';
import { clusterPaths } from '../cluster/layout.js';
import { issue, loadCa, PKI_FILES, type CertPair, type ClusterPki } from '../cluster/pki.js';
import { ownsPid, stopPids } from '../cluster/supervise.js';
import { imageArchive, busyboxImage, pauseImage, PAUSE_REF, type ImageSpec } from '../image/archive.js';
import { BRIDGE, FENCE_TABLE, killPodProcesses, loadSnapshot, restoreHost, saveSnapshot, snapshotHost } from './host.js';
import { ensureHostPrograms, type HostPrograms } from './prereqs.js';
import { resolveNodePrograms } from './programs.js';

const execFileP = promisify(execFile);

/** The real node's name. */
export const REAL_NODE_NAME = 'bosun-real-0';
/** The label the real node carries, for a nodeSelector. */
export const REAL_NODE_LABEL = { key: 'bosun.dev/node', value: 'real' } as const;
/** The taint that keeps every Pod off the real node but those that tolerate it. */
export const REAL_NODE_TAINT = { key: 'bosun.dev/real-node', value: 'true', effect: 'NoSchedule' } as const;
/** The real node's Pod addresses: apart from kwok's 10.64.0.0/10 and the service range 10.0.0.0/24. */
export const REAL_POD_CIDR = '10.200.0.0/24';
/** The kubelet's fixed ports (its API and its healthz): one real node per machine. */
export const KUBELET_PORTS = { api: 10250, healthz: 10248 } as const;
/** kube-proxy's healthz port, on loopback. */
const KUBE_PROXY_HEALTHZ_PORT = 10256;
/** Which cluster directory holds this machine's one real node. */
const CLAIM_FILE = '/run/bosun-real-node.json';

/** The files of the real node inside the cluster directory `dir`. */
export function nodePaths(dir: string) {
  const root = join(dir, 'node');
  return {
    root,
    pids: join(root, 'pids.json'),
    snapshot: join(root, 'host-before.json'),
    containerdConfig: join(root, 'containerd.toml'),
    containerdRoot: join(root, 'containerd'),
    containerdState: join(root, 'run'),
    socket: join(root, 'containerd.sock'),
    cniConf: join(root, 'cni', 'net.d'),
    cniData: join(root, 'cni', 'ipam'),
    kubeletRoot: join(root, 'kubelet'),
    kubeletConfig: join(root, 'kubelet.yaml'),
    kubeletKubeconfig: join(root, 'kubelet.kubeconfig'),
    proxyConfig: join(root, 'kube-proxy.yaml'),
    proxyKubeconfig: join(root, 'kube-proxy.kubeconfig'),
    /** The only programs on kube-proxy's PATH besides /usr/bin: nft, so it never writes iptables rules. */
    proxyBin: join(root, 'bin'),
    podLogs: join(root, 'pod-logs'),
    images: join(root, 'images'),
    pki: join(root, 'pki'),
  };
}

interface NodePids {
  containerd?: number;
  kubelet?: number;
  'kube-proxy'?: number;
}

/** The IPv4 address of the interface the default route leaves by: the node's InternalIP, where the API server reaches the kubelet. */
export async function hostIp(): Promise<string> {
  const routes = await readFile('/proc/net/route', 'utf8').catch(() => '');
  const iface = routes
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === '00000000')?.[0];
  const all = networkInterfaces();
  const pick = (name: string | undefined) => (name ? all[name]?.find((a) => a.family === 'IPv4' && !a.internal)?.address : undefined);
  const ip = pick(iface) ?? Object.keys(all).map(pick).find(Boolean);
  if (!ip)
    throw new ClusterError(
      'a real node needs a non-loopback IPv4 address for its kubelet (the kubelet refuses a loopback node IP); this machine has none',
    );
  return ip;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  return readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as T,
    () => undefined,
  );
}

/** Refuses at once when another cluster's real node runs on this machine; undoes one that is gone. */
export async function assertNodeFree(dir: string): Promise<void> {
  const held = await readJson<{ dir: string }>(CLAIM_FILE);
  if (held && held.dir !== dir) {
    const pids = (await readJson<NodePids>(nodePaths(held.dir).pids)) ?? {};
    const alive = [pids.containerd, pids.kubelet].filter((p): p is number => p !== undefined && pidAlive(p));
    const live = (await Promise.all(alive.map((p) => ownsPid(held.dir, p)))).some(Boolean);
    if (live)
      throw new ClusterError(
        `this machine's real node belongs to the cluster in ${held.dir} (one per machine: its kubelet holds ports ${KUBELET_PORTS.api} and ${KUBELET_PORTS.healthz}, and its containerd and cgroups are host-wide). ` +
          `Stop it first with: bosun cluster down --dir ${held.dir}   or start this cluster without --node real.`,
      );
    // Left by a cluster whose node is gone (a crash, a reboot): undo what it left on the host before taking over.
    await undo(held.dir, () => undefined);
    await rm(CLAIM_FILE, { force: true });
  }
}

async function claim(dir: string): Promise<void> {
  await assertNodeFree(dir);
  await writeFile(CLAIM_FILE, JSON.stringify({ dir, pid: process.pid }));
}

/** The API server flags a real node needs: the Node authorizer, how to reach and trust the kubelet, and its client certificate. */
export async function apiserverFlags(dir: string, pki: ClusterPki): Promise<string[]> {
  // Before anything starts: a second cluster asking for this machine's one real node is refused here.
  await assertNodeFree(dir);
  const p = nodePaths(dir);
  await mkdir(p.pki, { recursive: true, mode: 0o700 });
  const certFile = join(p.pki, 'apiserver-kubelet-client.crt');
  const keyFile = join(p.pki, 'apiserver-kubelet-client.key');
  const existing = await readFile(certFile, 'utf8').catch(() => undefined);
  if (!existing) {
    const ca = await loadCa(pki.ca);
    // system:masters: the kubelet's webhook authorizer asks the API server, which allows its own kubelet client everything.
    const pair = await issue(ca, 'CN=kube-apiserver-kubelet-client, O=system:masters', { client: true });
    await writeFile(keyFile, pair.key, { mode: 0o600 });
    await writeFile(certFile, pair.cert, { mode: 0o600 });
  }
  const ip = await hostIp();
  return [
    // Pods reach the API server through the kubernetes Service, which kube-proxy routes to the advertised address:
    // loopback cannot be reached from a Pod's network namespace.
    '--bind-address=0.0.0.0',
    `--advertise-address=${ip}`,
    '--authorization-mode=Node,RBAC',
    '--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP',
    `--kubelet-client-certificate=${certFile}`,
    `--kubelet-client-key=${keyFile}`,
    `--kubelet-certificate-authority=${join(dir, 'pki', PKI_FILES.caCert)}`,
  ];
}

function kubeconfig(server: string, caPem: string, client: CertPair): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'bosun', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: 'kubelet', user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) } }],
    contexts: [{ name: 'bosun', context: { cluster: 'bosun', user: 'kubelet' } }],
    'current-context': 'bosun',
  });
}

function containerdToml(dir: string, host: HostPrograms): string {
  const p = nodePaths(dir);
  const q = (s: string) => JSON.stringify(s);
  return `version = 2
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}
oom_score = 0
# Snapshotters and services a real node of bosun does not use; each would only log why it cannot start.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(p.socket)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(p.containerdRoot, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_REF)}
  # The process may not lower its children's oom_score_adj below its own: without this every container start fails.
  restrict_oom_score_adj = true
  # Pod network namespaces under the cluster directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ${q(host.runc)}
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(host.cniBinDir)}
    conf_dir = ${q(p.cniConf)}
    max_conf_num = 1
`;
}

function cniConflist(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'bosun',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          isDefaultGateway: true,
          // No masquerading: Pods talk to this machine only, and no iptables rule is written.
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: REAL_POD_CIDR }]], dataDir: nodePaths(dir).cniData },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, ip: string): string {
  const p = nodePaths(dir);
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: ip,
    port: KUBELET_PORTS.api,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: KUBELET_PORTS.healthz,
    tlsCertFile: join(p.pki, 'kubelet.crt'),
    tlsPrivateKeyFile: join(p.pki, 'kubelet.key'),
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: join(dir, 'pki', PKI_FILES.caCert) },
    },
    authorization: { mode: 'Webhook' },
    // This machine kind runs cgroup v1 without systemd.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${p.socket}`,
    podLogsDir: p.podLogs,
    volumePluginDir: join(p.kubeletRoot, 'volume-plugins'),
    podCIDR: REAL_POD_CIDR,
    registerNode: true,
    registerWithTaints: [REAL_NODE_TAINT],
    // Images come from `bosun image build`, not a registry: garbage collection must never delete them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    maxPods: 30,
    serializeImagePulls: false,
    resolvConf: '/etc/resolv.conf',
  });
}

function kubeProxyConfig(dir: string): string {
  const p = nodePaths(dir);
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    // Its own nftables table, removed whole by cluster down; iptables mode would add chains to the host's shared tables.
    mode: 'nftables',
    clientConnection: { kubeconfig: p.proxyKubeconfig },
    hostnameOverride: REAL_NODE_NAME,
    clusterCIDR: REAL_POD_CIDR,
    detectLocalMode: 'ClusterCIDR',
    healthzBindAddress: `127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}`,
    metricsBindAddress: '127.0.0.1:10249',
    // 0 everywhere: leave the host's conntrack sysctls as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', udpTimeout: '0s', udpStreamTimeout: '0s' },
  });
}

function spawnLogged(
  logFile: string,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { pid: number; exited: () => string | undefined } {
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  let info: string | undefined;
  child.on('exit', (code, signal) => (info = `exited with ${signal ?? `code ${code ?? '?'}`}`));
  child.on('error', (err) => (info = `could not start: ${err.message}`));
  child.unref();
  if (child.pid === undefined) throw new ClusterError(`could not start ${bin}; check that it is executable`);
  return { pid: child.pid, exited: () => info };
}

async function tail(file: string, lines = 20): Promise<string> {
  return readFile(file, 'utf8').then(
    (t) => t.trimEnd().split('\n').slice(-lines).join('\n'),
    () => '(no log)',
  );
}

async function until(
  what: string,
  ms: number,
  exited: () => string | undefined,
  log: string,
  check: () => Promise<boolean>,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const info = exited();
    if (info) throw new ClusterError(`${what}: the process ${info}. Last lines of ${log}:\n${await tail(log)}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new ClusterError(`timed out after ${ms / 1000} s waiting for ${what}; see ${log}:\n${await tail(log)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs ctr against the real node's containerd. */
export async function ctr(dir: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP('ctr', ['--address', nodePaths(dir).socket, ...args], { timeout: 120_000, maxBuffer: 16 << 20 });
  return stdout;
}

/** Writes one image and imports it into the real node's containerd (namespace k8s.io, where the kubelet finds it). */
export async function importImage(dir: string, spec: ImageSpec): Promise<string> {
  const p = nodePaths(dir);
  await mkdir(p.images, { recursive: true });
  const file = join(p.images, `${spec.ref.replace(/[^\w.-]+/g, '_')}.tar`);
  await writeFile(file, imageArchive(spec).archive);
  await ctr(dir, ['-n', 'k8s.io', 'images', 'import', file]);
  return spec.ref;
}

/** Writes the images the real node's Pods run (busybox, pause) and imports them into its containerd under the names manifests use. */
export async function importImages(dir: string, host: HostPrograms, pausePath: string, progress: Progress): Promise<string[]> {
  const refs: string[] = [];
  for (const spec of [await pauseImage(pausePath), await busyboxImage(host.busybox)]) refs.push(await importImage(dir, spec));
  progress(`bosun: imported ${refs.join(', ')} into the real node's containerd`);
  return refs;
}

/** Options for starting the real node. */
export interface RealNodeOptions {
  dir: string;
  pki: ClusterPki;
  apiserverUrl: string;
  progress: Progress;
  timeoutMs?: number;
}

/**
 * Starts the real node of the cluster in `dir` (its API server must run with `apiserverFlags`): installs
 * or builds what is missing, records the host state, starts containerd, imports the images, starts the
 * kubelet and waits until the Node is Ready.
 */
export async function startRealNode(opts: RealNodeOptions): Promise<void> {
  const { dir, pki, progress } = opts;
  const p = nodePaths(dir);
  if (process.getuid?.() !== 0)
    throw new ClusterError(
      'a real node (--node real) must run as root: containerd and the kubelet create mounts, cgroups and network interfaces',
    );
  if (p.socket.length > 100)
    throw new ClusterError(
      `the cluster directory ${dir} is too long for the real node's containerd socket (${p.socket}, over 100 characters); use a shorter --dir`,
    );
  const [host, built] = await Promise.all([ensureHostPrograms(progress), resolveNodePrograms(progress)]);
  await claim(dir);
  // A node left running or crashed in this directory: undo it before starting anew.
  await undo(dir, progress);
  const ip = await hostIp();
  await mkdir(p.root, { recursive: true });
  await saveSnapshot(p.snapshot, await snapshotHost());
  for (const d of [p.containerdRoot, p.containerdState, p.cniConf, p.cniData, p.kubeletRoot, p.podLogs, p.pki])
    await mkdir(d, { recursive: true });

  const ca = await loadCa(pki.ca);
  const [client, serving, proxyClient] = await Promise.all([
    issue(ca, `CN=system:node:${REAL_NODE_NAME}, O=system:nodes`, { client: true }),
    issue(ca, `CN=${REAL_NODE_NAME}`, { server: { dns: [REAL_NODE_NAME, 'localhost'], ips: [ip, '127.0.0.1'] } }),
    // The bootstrap binding system:node-proxier names this user.
    issue(ca, 'CN=system:kube-proxy', { client: true }),
  ]);
  await mkdir(p.proxyBin, { recursive: true });
  await rm(join(p.proxyBin, 'nft'), { force: true });
  await symlink(host.nft, join(p.proxyBin, 'nft'));
  await Promise.all([
    writeFile(join(p.pki, 'kubelet.crt'), serving.cert, { mode: 0o600 }),
    writeFile(join(p.pki, 'kubelet.key'), serving.key, { mode: 0o600 }),
    writeFile(p.kubeletKubeconfig, kubeconfig(opts.apiserverUrl, pki.ca.cert, client), { mode: 0o600 }),
    writeFile(p.kubeletConfig, kubeletConfig(dir, ip)),
    writeFile(p.proxyKubeconfig, kubeconfig(opts.apiserverUrl, pki.ca.cert, proxyClient), { mode: 0o600 }),
    writeFile(p.proxyConfig, kubeProxyConfig(dir)),
    writeFile(p.containerdConfig, containerdToml(dir, host)),
    writeFile(join(p.cniConf, '10-bosun.conflist'), cniConflist(dir)),
  ]);

  const logs = clusterPaths(dir).logs;
  await mkdir(logs, { recursive: true });
  const pids: NodePids = {};
  const savePids = () => writeFile(p.pids, JSON.stringify(pids));
  const t0 = Date.now();
  // Pods may reach this machine and each other, never beyond it: without masquerading their packets would leave
  // with Pod addresses (to kwok's fake Pod IPs, to the resolver in resolv.conf). Its own table, removed by down.
  const fence = join(p.root, 'fence.nft');
  await writeFile(
    fence,
    `table inet ${FENCE_TABLE} {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    iifname "${BRIDGE}" oifname != "${BRIDGE}" drop\n  }\n}\n`,
  );
  await execFileP(host.nft, ['-f', fence]).catch((err: { stderr?: string; message: string }) => {
    throw new ClusterError(
      `could not add the nftables table ${FENCE_TABLE} that keeps Pod traffic on this machine: ${(err.stderr ?? err.message).trim()}`,
    );
  });
  progress('bosun: starting the real node: containerd');
  const containerdLog = join(logs, 'containerd.log');
  const cd = spawnLogged(containerdLog, host.containerd, ['--config', p.containerdConfig], process.env);
  pids.containerd = cd.pid;
  await savePids();
  const ms = opts.timeoutMs ?? 60_000;
  await until('containerd to answer', ms, cd.exited, containerdLog, async () => {
    await ctr(dir, ['version']);
    return true;
  });
  await importImages(dir, host, built.pause, progress);

  progress(`bosun: starting the real node's kubelet (${REAL_NODE_NAME}, ${ip}:${KUBELET_PORTS.api})`);
  const kubeletLog = join(logs, 'kubelet.log');
  // Without iptables on its PATH the kubelet writes no canary chains: nothing on this node needs them (no kube-proxy).
  const env = { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin' };
  const kl = spawnLogged(
    kubeletLog,
    built.kubelet,
    [
      `--config=${p.kubeletConfig}`,
      `--kubeconfig=${p.kubeletKubeconfig}`,
      `--root-dir=${p.kubeletRoot}`,
      `--hostname-override=${REAL_NODE_NAME}`,
      `--node-ip=${ip}`,
      `--node-labels=${REAL_NODE_LABEL.key}=${REAL_NODE_LABEL.value}`,
      '--v=1',
    ],
    env,
  );
  pids.kubelet = kl.pid;
  await savePids();
  const tk = Date.now();
  await until(`node ${REAL_NODE_NAME} to be Ready`, ms, kl.exited, kubeletLog, async () => {
    const r = await adminGet(`${opts.apiserverUrl}/api/v1/nodes/${REAL_NODE_NAME}`, pki);
    if (r.status !== 200) return false;
    const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string; lastHeartbeatTime?: string }[] } };
    // A Node left by an earlier kubelet still reads Ready for a while: only a heartbeat of this kubelet counts.
    const since = Math.floor(tk / 1000) * 1000;
    return (
      node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && Date.parse(c.lastHeartbeatTime ?? '') >= since) ??
      false
    );
  });
  progress('bosun: starting kube-proxy (nftables)');
  const proxyLog = join(logs, 'kube-proxy.log');
  const kp = spawnLogged(proxyLog, built['kube-proxy'], [`--config=${p.proxyConfig}`, '--v=1'], {
    ...process.env,
    PATH: `${p.proxyBin}:/usr/bin:/bin`,
  });
  pids['kube-proxy'] = kp.pid;
  await savePids();
  await until('kube-proxy to be healthy', ms, kp.exited, proxyLog, async () => {
    const r = await fetch(`http://127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}/healthz`, { signal: AbortSignal.timeout(2_000) });
    return r.status === 200;
  });
  progress(
    `bosun: real node ${REAL_NODE_NAME} Ready ${((Date.now() - tk) / 1000).toFixed(1)} s after the kubelet started (${((Date.now() - t0) / 1000).toFixed(1)} s with containerd and the images)`,
  );
}

/** Whether the real node's kubelet and containerd of the cluster in `dir` run, with their pids and logs. */
export async function realNodeStatus(
  dir: string,
): Promise<{ name: 'kubelet' | 'containerd' | 'kube-proxy'; pid?: number; running: boolean; log: string }[]> {
  const pids = (await readJson<NodePids>(nodePaths(dir).pids)) ?? {};
  return Promise.all(
    (['containerd', 'kubelet', 'kube-proxy'] as const).map(async (name) => {
      const pid = pids[name];
      return { name, pid, running: pid !== undefined && (await ownsPid(dir, pid)), log: join(clusterPaths(dir).logs, `${name}.log`) };
    }),
  );
}

/** Whether the cluster in `dir` has a real node's files (so down has something to undo). */
export async function hasRealNode(dir: string): Promise<boolean> {
  return readFile(nodePaths(dir).pids, 'utf8').then(
    () => true,
    () => loadSnapshot(nodePaths(dir).snapshot).then((s) => s !== undefined),
  );
}

async function undo(dir: string, progress: Progress): Promise<string[]> {
  const p = nodePaths(dir);
  const pids = (await readJson<NodePids>(p.pids)) ?? {};
  const stopped: string[] = [];
  if (pids['kube-proxy'] !== undefined) stopped.push(...(await stopPids(dir, [{ name: 'kube-proxy', pid: pids['kube-proxy'] }])));
  if (pids.kubelet !== undefined) stopped.push(...(await stopPids(dir, [{ name: 'kubelet', pid: pids.kubelet }])));
  const killed = await killPodProcesses();
  // The shims outlive containerd; each names this node's socket on its command line.
  const shims = await shimPids(p.socket);
  for (const pid of shims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (pids.containerd !== undefined) stopped.push(...(await stopPids(dir, [{ name: 'containerd', pid: pids.containerd }])));
  await rm(p.pids, { force: true });
  const before = await loadSnapshot(p.snapshot);
  const undone = before ? await restoreHost(before, p.root) : [];
  await rm(p.snapshot, { force: true });
  // The containers' files: owned by root, mounted until now; nothing in them outlives the node.
  await rm(p.containerdState, { recursive: true, force: true });
  const what = [
    ...stopped,
    ...(killed ? [`${killed} container processes`] : []),
    ...(shims.length ? [`${shims.length} shims`] : []),
    ...undone,
  ];
  if (what.length) progress(`bosun: real node stopped: ${what.join('; ')}`);
  return what;
}

async function shimPids(socket: string): Promise<number[]> {
  const out: number[] = [];
  const { readdir } = await import('node:fs/promises');
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('containerd-shim') && cmd.includes(socket)) out.push(Number(e));
  }
  return out;
}

/** Stops the real node of the cluster in `dir` and undoes what it changed on the host; releases the machine's claim. */
export async function stopRealNode(dir: string, progress: Progress): Promise<string[]> {
  const what = await undo(dir, progress);
  const held = await readJson<{ dir: string }>(CLAIM_FILE);
  if (held?.dir === dir) await rm(CLAIM_FILE, { force: true });
  return what;
}
