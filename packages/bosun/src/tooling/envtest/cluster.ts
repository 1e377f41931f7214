// A local control plane of a test's or a benchmark's own, in a directory it names: for runs that must not share
// the test cluster (a scenario that kills the API server, a benchmark that counts its requests).
import { adminGet, type ClusterState } from '../cluster/controlplane.js';
import { loadPki } from '../cluster/pki.js';
import { bosunError } from '../../errors.js';

export {
  up as startCluster,
  down as stopCluster,
  type UpOptions as StartClusterOptions,
  type UpResult as StartedCluster,
  type DownOptions as StopClusterOptions,
  type ClusterState,
} from '../cluster/controlplane.js';
export { withFileLock } from '../cluster/lock.js';

/** Raised when the API server's metrics cannot be read; names the cluster directory. */
export class ClusterMetricsError extends bosunError('BOSUN_CLUSTER_METRICS') {
  override name = 'ClusterMetricsError';
}

/** The API server's Prometheus metrics (text), read with the cluster's admin certificate. */
export async function apiserverMetrics(state: Pick<ClusterState, 'dir' | 'apiserverUrl'>, timeoutMs = 30_000): Promise<string> {
  const pki = await loadPki(state.dir);
  if (!pki) throw new ClusterMetricsError(`no certificates in ${state.dir}. Fix: start the cluster there first (startCluster({ dir }))`);
  const res = await adminGet(`${state.apiserverUrl}/metrics`, pki, timeoutMs);
  if (res.status !== 200)
    throw new ClusterMetricsError(
      `GET ${state.apiserverUrl}/metrics of the cluster in ${state.dir} answered ${res.status}: ${res.body.slice(0, 200)}`,
    );
  return res.body;
}
