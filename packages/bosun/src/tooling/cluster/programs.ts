// What each program of the control plane is started with: its flags, the kubeconfigs and config
// files it reads, and the one fake Node kwok runs Pods on.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KWOK_STAGES } from './kwok-stages.js';
import { clusterPaths } from './layout.js';
import { PKI_FILES, type CertPair, type ClusterPki } from './pki.js';
import type { Ports } from './ports.js';
import type { ProgramName } from './versions.js';

/** The name of the one fake Node kwok manages. */
export const NODE_NAME = 'bosun-node-0';
const SERVICE_CIDR = '10.0.0.0/24';
/** The API server's address in the service range, which its serving certificate must name. */
export const SERVICE_IP = '10.0.0.1';
const POD_CIDR = '10.64.0.1/10';

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

/** The command-line flags of program `name` in the cluster directory `dir`. */
export function argsFor(name: ProgramName, dir: string, ports: Ports): string[] {
  const p = clusterPaths(dir);
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
        // Renew the Node's Lease as a kubelet does. Without a lease duration kwok 0.7 neither keeps a Lease nor
        // refreshes the Node's status more often than every 10 minutes, so kube-controller-manager saw the Node
        // stale after its 50 s grace period, marked every Pod on it NotReady, and kwok (whose Pod stages act only
        // on Pods without an IP) never made them Ready again.
        '--node-lease-duration-seconds=40',
        `--server-address=127.0.0.1:${ports.kwok}`,
      ];
  }
}

/** Writes the kubeconfigs (the admin's and each program's) and the scheduler's and kwok's config files for these ports. */
export async function writeConfigs(dir: string, pki: ClusterPki, ports: Ports): Promise<void> {
  const p = clusterPaths(dir);
  await mkdir(p.config, { recursive: true });
  const server = `https://127.0.0.1:${ports.apiserver}`;
  await Promise.all([
    writeFile(p.kubeconfig, kubeconfigYaml(server, pki.ca.cert, 'bosun-admin', pki.admin), { mode: 0o600 }),
    writeFile(
      join(p.config, 'controller-manager.kubeconfig'),
      kubeconfigYaml(server, pki.ca.cert, 'kube-controller-manager', pki.controllerManager),
      { mode: 0o600 },
    ),
    writeFile(join(p.config, 'scheduler.kubeconfig'), kubeconfigYaml(server, pki.ca.cert, 'kube-scheduler', pki.scheduler), {
      mode: 0o600,
    }),
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

/** The fake Node kwok manages: the up creates it, since kwok only takes over nodes carrying its annotation. */
export function nodeObject() {
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
      // Room for the benchmarks' 50,000 Pods on one fake node.
      allocatable: { cpu: '1000', memory: '4Ti', pods: '60000' },
      capacity: { cpu: '1000', memory: '4Ti', pods: '60000' },
    },
  };
}
