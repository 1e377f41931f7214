/**
 * The test harness: a real control plane for tests, as envtest is for Go operators.
 *
 * One control plane serves a whole test run (started once, or reused when running), each test
 * gets a fresh namespace, CRDs are applied and established before tests start, and the
 * cluster's logs stay in its directory for reading after a failure.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { KubeClient, type KubeClientConfig } from '../../client/client.js';
import type { ControllerSpec } from '../../controller/builder.js';
import { createLogger } from '../../telemetry/logger.js';
import { Manager } from '../../manager/manager.js';
import { up, type ClusterState } from '../cluster/controlplane.js';
import { bosunError } from '../../errors.js';

/** Raised when the harness cannot provide the environment; names the step that failed. */
export class TestEnvError extends bosunError('BOSUN_TESTENV') {
  override name = 'TestEnvError';
}

/** What `kubectl` printed and how it exited. */
export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Options for `startTestEnv`. */
export interface TestEnvOptions {
  /** Cluster directory; default $BOSUN_TEST_CLUSTER_DIR, else `.bosun/test-cluster`. */
  dir?: string;
  /** CRD manifest files or directories to apply before tests run. */
  crds?: string[];
}

/** A running control plane for tests, with helpers to make namespaces and run kubectl. */
export interface TestEnv {
  /** The cluster directory: its `logs/` hold each program's log. */
  dir: string;
  /** Admin kubeconfig path for clients and kubectl. */
  kubeconfig: string;
  /** The cluster's recorded state (API server URL, ports, pids). */
  state: ClusterState;
  /** Runs kubectl against the cluster; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** Runs kubectl and throws with its stderr when it fails. */
  kubectlOk(args: string[], input?: string): Promise<string>;
  /** Creates a fresh namespace (with its default ServiceAccount ready); deleted by `cleanup`. */
  namespace(prefix?: string, labels?: Record<string, string>): Promise<string>;
  /** Deletes the namespaces this env created (without waiting for their finalization). */
  cleanup(): Promise<void>;
}

/** Runs kubectl with a given kubeconfig. */
export function runKubectl(kubeconfig: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((res) => {
    const child = execFile(
      'kubectl',
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        res({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or throws after `timeoutMs` naming `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > until) {
      throw new TestEnvError(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Starts (or reuses) the test control plane and applies the given CRDs. Safe to call from every
 * test file: a running cluster in the same directory is reused, not restarted.
 */
export async function startTestEnv(opts: TestEnvOptions = {}): Promise<TestEnv> {
  const dir = resolve(opts.dir ?? process.env.BOSUN_TEST_CLUSTER_DIR ?? '.bosun/test-cluster');
  const { state, kubeconfig } = await up({ dir, progress: (l) => process.stderr.write(`${l}\n`) });
  const kubectl = (args: string[], input?: string) => runKubectl(kubeconfig, args, input);
  const kubectlOk = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    if (r.code !== 0) throw new TestEnvError(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  for (const crd of opts.crds ?? []) {
    await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', crd]);
    await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', '-f', crd]);
  }
  const created: string[] = [];
  return {
    dir,
    kubeconfig,
    state,
    kubectl,
    kubectlOk,
    async namespace(prefix = 'test', labels = {}) {
      const name = `${prefix}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 63);
      const labelDoc = Object.entries(labels)
        .map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
        .join('\n');
      await kubectlOk(
        ['apply', '-f', '-'],
        `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    bosun.dev/test: "true"\n${labelDoc}\n`,
      );
      created.push(name);
      // Pods are refused until the namespace's default ServiceAccount exists.
      await eventually(`ServiceAccount default in ${name}`, async () =>
        (await kubectl(['get', 'serviceaccount', 'default', '-n', name])).code === 0 ? true : undefined,
      );
      return name;
    },
    async cleanup() {
      if (process.env.BOSUN_KEEP_NAMESPACES === '1') {
        process.stderr.write(`bosun envtest: keeping namespaces ${created.join(', ')}; cluster logs in ${join(dir, 'logs')}\n`);
        return;
      }
      if (created.length) await kubectl(['delete', 'namespace', '--wait=false', '--ignore-not-found', ...created.splice(0)]);
    },
  };
}

/** Controllers running in this process for a test, with their log lines captured. */
export interface RunningControllers {
  /** The manager running them. */
  manager: Manager;
  /** Every log line so far (JSON), for assertions such as "Reconciling Message" was logged. */
  logs: string[];
  /** Stops the manager gracefully (in-flight reconciles finish) and waits for it. */
  stop(): Promise<void>;
}

/** Options of `runControllers`. */
export interface RunControllersOptions {
  /** Namespaces to watch (a test's own namespace keeps tests apart). */
  namespaces?: string[];
  /** Leader election on a Lease, with short timings suited to tests. */
  leaderElection?: { namespace: string; name: string; identity?: string };
  /** Another kubeconfig than the test cluster's (for example the fault proxy's). */
  kubeconfig?: string;
  /** Client settings such as the transport or its dead-connection timings. */
  client?: Omit<KubeClientConfig, 'kubeconfig'>;
}

/** Runs controllers in-process against the test cluster, capturing their logs: the operator under test. */
export function runControllers(env: TestEnv, specs: ControllerSpec[], opts: RunControllersOptions = {}): RunningControllers {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  const manager = new Manager({
    client: KubeClient.fromConfig({ ...opts.client, kubeconfig: opts.kubeconfig ?? env.kubeconfig }),
    namespaces: opts.namespaces,
    logger: createLogger({ destination: sink, level: 'debug' }),
    leaderElection: opts.leaderElection
      ? { ...opts.leaderElection, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 }
      : undefined,
  });
  for (const s of specs) manager.add(s);
  const ac = new AbortController();
  const done = manager.start(ac.signal);
  return {
    manager,
    logs,
    async stop() {
      ac.abort();
      await done;
    },
  };
}

/**
 * Writes a kubeconfig that reaches the cluster of `adminKubeconfig` (its server and CA, inlined) but
 * authenticates only with the bearer `token`, as a ServiceAccount or a user would: for tests of what a
 * least-privileged identity may do. Resolves `file`.
 */
export async function writeTokenKubeconfig(opts: { adminKubeconfig: string; token: string; file: string; user?: string }): Promise<string> {
  const admin = parseYaml(await readFile(opts.adminKubeconfig, 'utf8')) as { clusters?: { cluster?: Record<string, string> }[] };
  const cluster = { ...admin.clusters?.[0]?.cluster };
  if (!cluster.server)
    throw new TestEnvError(`${opts.adminKubeconfig} has no cluster with a server. Fix: pass the kubeconfig the control plane wrote`);
  const ca = cluster['certificate-authority'];
  if (ca) {
    cluster['certificate-authority-data'] = (await readFile(resolve(dirname(opts.adminKubeconfig), ca))).toString('base64');
    delete cluster['certificate-authority'];
  }
  const user = opts.user ?? 'token-user';
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'cluster', cluster }],
    users: [{ name: user, user: { token: opts.token } }],
    contexts: [{ name: user, context: { cluster: 'cluster', user } }],
    'current-context': user,
  };
  await writeFile(opts.file, stringifyYaml(config), { mode: 0o600 });
  return opts.file;
}
