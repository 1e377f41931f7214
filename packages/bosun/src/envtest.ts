/**
 * bosun/envtest: tests against a real control plane — `startTestEnv` starts (or reuses) a local kube-apiserver
 * and etcd, gives each test its own namespace, and `runControllers` runs an operator's controllers in-process;
 * a TCP fault proxy stands between them when a test needs cut, frozen or slow connections, and `serveWebhooks`
 * serves a test's admission and conversion webhooks in-process, registered for its namespace.
 */
export {
  startTestEnv,
  runControllers,
  runKubectl,
  eventually,
  writeTokenKubeconfig,
  TestEnvError,
  type TestEnv,
  type TestEnvOptions,
  type RunningControllers,
  type RunControllersOptions,
  type KubectlResult,
} from './tooling/envtest/testenv.js';
export {
  startFaultProxy,
  writeProxyKubeconfig,
  FaultProxyError,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
  type CutMode,
} from './tooling/envtest/faultproxy.js';
export {
  startCluster,
  stopCluster,
  apiserverMetrics,
  withFileLock,
  ClusterMetricsError,
  type StartClusterOptions,
  type StartedCluster,
  type StopClusterOptions,
  type ClusterState,
} from './tooling/envtest/cluster.js';
export { serveWebhooks, type ServeWebhooksOptions, type ServedWebhooks } from './tooling/envtest/webhooks.js';
/** An image the local cluster's node never pulls (ErrImagePull), as a missing image would fail on a real node. */
export { FAILING_IMAGE } from './tooling/cluster/kwok-stages.js';
