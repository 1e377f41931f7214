/** The pinned upstream release of the Kubernetes control-plane programs; tools/controlplane/go.mod must require the same. */
export const KUBERNETES_VERSION = 'v1.35.4';
/** The etcd release Kubernetes v1.35 is built and tested against (its go.mod requires go.etcd.io/etcd v3.6.5). */
export const ETCD_VERSION = 'v3.6.5';
/** The pinned kwok release; tools/kwok/go.mod must require the same. */
export const KWOK_VERSION = 'v0.7.0';

/** The programs a local control plane runs. */
export type ProgramName = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

/** Every program, in start order. */
export const PROGRAMS: readonly ProgramName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

/** The pinned version of one program. */
export function versionOf(name: ProgramName): string {
  if (name === 'etcd') return ETCD_VERSION;
  if (name === 'kwok') return KWOK_VERSION;
  return KUBERNETES_VERSION;
}

/** Where `bosun cluster` keeps a cluster unless --dir says otherwise. */
export const DEFAULT_CLUSTER_DIR = '.bosun/cluster';
