// A control plane of a scenario's own, in a temporary directory: the scenarios that kill the API
// server or compact etcd must not do it to the test cluster other tests share.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeClient } from '../../../packages/bosun/src/client/client.js';
import { down, up, type ClusterState } from '../../../packages/bosun/src/tooling/cluster/controlplane.js';
import { eventually, runKubectl, type KubectlResult } from '../../../packages/bosun/src/tooling/envtest/testenv.js';
import { auditFlags, TEST_USER_AGENT } from './audit.js';
import { restartApiserver, signalProgram, startProgram, withArgs, type ApiserverRestart } from './restart.js';

/** Raised when a scenario's control plane cannot be prepared; names the step. */
export class FaultClusterError extends Error {
  override name = 'FaultClusterError';
}

/**
 * How long kube-controller-manager waits for a Node heartbeat before it marks the Node NotReady and
 * every Pod on it Ready=False. kwok heartbeats about once a minute (no node Lease) and, once the
 * Node is Ready again, never sets its Pods' Ready condition back, as a real kubelet would: with the
 * default 50 s, a heartbeat lost to an API server kill left every Application's Pods not ready for
 * good (scenario 1, 30 of 30 Applications ReplicasNotReady 90 s later). Ten minutes is longer than
 * any outage a scenario makes.
 */
export const NODE_MONITOR_GRACE = '10m';

/** The CRDs `bosun generate` writes: every operator's custom resource. */
const CRD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'config', 'crd');

/** The CRD manifests of config/crd (Message, Application, FlightTicket), as absolute paths. */
export async function crdFiles(): Promise<string[]> {
  const files = (await readdir(CRD_DIR)).filter((f) => f.endsWith('.yaml')).sort();
  if (files.length === 0) throw new FaultClusterError(`no CRD manifest (*.yaml) in ${CRD_DIR}; run bosun generate`);
  return files.map((f) => join(CRD_DIR, f));
}

/** A scenario's own control plane, with the audit log on and every CRD of config/crd installed. */
export interface FaultCluster {
  dir: string;
  kubeconfig: string;
  /** The cluster's recorded state (its ports: `state.ports.etcdClient`, `state.ports.apiserver`). */
  state: ClusterState;
  /** A client for the scenario itself (user agent TEST_USER_AGENT, so its requests are never counted as the operator's). */
  client: KubeClient;
  /** The audit log of the admin user's requests. */
  auditLog: string;
  /** The etcd client URL (plain HTTP on 127.0.0.1, as `up` starts it). */
  etcdUrl: string;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  kubectlOk(args: string[], input?: string): Promise<string>;
  /** Creates a namespace and waits for its default ServiceAccount (Pods are refused before it exists). */
  namespace(name: string): Promise<string>;
  /** SIGKILLs kube-apiserver (or `signal`) and starts it again with the same flags plus `extraArgs`. */
  restartApiserver(opts?: { signal?: NodeJS.Signals; extraArgs?: string[]; pauseMs?: number }): Promise<ApiserverRestart>;
  /** Stops every program and removes the directory (kept running, for a look at its logs, with BOSUN_FAULT_KEEP=1). */
  destroy(): Promise<void>;
}

const quiet = () => undefined;

/**
 * Starts a control plane in a new temporary directory, restarts its API server once with the audit
 * log on (and `apiserverArgs`, e.g. `--watch-cache=false`) and kube-controller-manager with a Node
 * grace period longer than any outage (NODE_MONITOR_GRACE), and installs every CRD of config/crd
 * (Message, Application, FlightTicket), so one operator process can run all three.
 */
export async function startFaultCluster(opts: { prefix: string; apiserverArgs?: string[] }): Promise<FaultCluster> {
  const dir = await mkdtemp(join(tmpdir(), `bosun-${opts.prefix}-`));
  let client: KubeClient | undefined;
  try {
    const { state, kubeconfig } = await up({ dir, progress: quiet });
    const audit = await auditFlags(dir);
    // `up` has no way to pass flags to the API server, so it starts again with them. SIGKILL: a
    // graceful stop waits for the long-running watches of the other programs, up to a minute.
    await restartApiserver(dir, { signal: 'SIGKILL', extraArgs: [...audit.args, ...(opts.apiserverArgs ?? [])] });
    const kcm = await signalProgram(dir, 'kube-controller-manager', 'SIGKILL');
    await startProgram(dir, 'kube-controller-manager', {
      bin: kcm.bin,
      args: withArgs(kcm.args, [`--node-monitor-grace-period=${NODE_MONITOR_GRACE}`]),
    });
    const kubectl = (args: string[], input?: string) => runKubectl(kubeconfig, args, input);
    const kubectlOk = async (args: string[], input?: string) => {
      const r = await kubectl(args, input);
      if (r.code !== 0)
        throw new FaultClusterError(`kubectl ${args.join(' ')} failed (exit ${r.code}) on the cluster in ${dir}: ${r.stderr.trim()}`);
      return r.stdout;
    };
    const crds = (await crdFiles()).flatMap((f) => ['-f', f]);
    await kubectlOk(['apply', '--server-side', ...crds]);
    await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', ...crds]);
    client = KubeClient.fromConfig({ kubeconfig, userAgent: TEST_USER_AGENT });
    const c = client;
    return {
      dir,
      kubeconfig,
      state,
      client: c,
      auditLog: audit.log,
      etcdUrl: `http://127.0.0.1:${state.ports.etcdClient}`,
      kubectl,
      kubectlOk,
      async namespace(name) {
        await kubectlOk(['create', 'namespace', name]);
        await eventually(
          `ServiceAccount default in ${name}`,
          async () => ((await kubectl(['get', 'serviceaccount', 'default', '-n', name])).code === 0 ? true : undefined),
          60_000,
        );
        return name;
      },
      restartApiserver: (o) => restartApiserver(dir, o),
      async destroy() {
        c.close();
        if (process.env.BOSUN_FAULT_KEEP === '1') {
          process.stderr.write(
            `bosun fault: keeping the cluster in ${dir} (BOSUN_FAULT_KEEP=1); stop it with: bosun cluster down --dir ${dir} --purge\n`,
          );
          return;
        }
        await down({ dir, purge: true, progress: quiet });
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    client?.close();
    await down({ dir, purge: true, progress: quiet }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
