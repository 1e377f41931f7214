// The operator as a Deployment runs it: authenticated as a ServiceAccount (a bound token in a
// kubeconfig of its own) with the ClusterRole `bosun generate` writes, so API Priority and Fairness
// can single it out and the audit log can name it.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_POLICY } from './audit.js';
import type { FaultCluster } from './cluster.js';
import { writeTokenKubeconfig } from 'bosun/envtest';

/** Raised when the operator's identity or its flow-control configuration cannot be set up; names the object. */
export class IdentityError extends Error {
  override name = 'IdentityError';
}

/** A ServiceAccount the operator authenticates as. */
export interface OperatorIdentity {
  namespace: string;
  name: string;
  /** The username the API server sees: `system:serviceaccount:<namespace>:<name>`. */
  username: string;
  /** A kubeconfig with only the ServiceAccount's token (no admin certificate). */
  kubeconfig: string;
}

/** The ClusterRole `bosun generate` writes for every operator (config/rbac/role.yaml). */
const MANAGER_ROLE = 'config/rbac/role.yaml';

/**
 * Creates ServiceAccount `name` in `namespace`, binds it to the generated manager ClusterRole, and
 * writes a kubeconfig holding a 1-hour token for it into the cluster directory.
 */
export async function serviceAccountIdentity(cluster: FaultCluster, namespace: string, name: string): Promise<OperatorIdentity> {
  await cluster.kubectlOk(['apply', '--server-side', '-f', MANAGER_ROLE]);
  await cluster.kubectlOk(['create', 'serviceaccount', '-n', namespace, name]);
  await cluster.kubectlOk([
    'create',
    'clusterrolebinding',
    `${name}-${namespace}`,
    '--clusterrole=bosun-manager-role',
    `--serviceaccount=${namespace}:${name}`,
  ]);
  const token = (await cluster.kubectlOk(['create', 'token', '-n', namespace, name, '--duration=1h'])).trim();
  if (!token) throw new IdentityError(`kubectl create token gave no token for ServiceAccount ${namespace}/${name}`);
  const kubeconfig = await writeTokenKubeconfig({
    adminKubeconfig: cluster.kubeconfig,
    token,
    file: join(cluster.dir, 'config', `${name}.kubeconfig`),
    user: name,
  });
  return { namespace, name, username: `system:serviceaccount:${namespace}:${name}`, kubeconfig };
}

/**
 * Adds `username` to the users the cluster's audit log records (the policy of lib/audit.ts records
 * the admin user only) and restarts kube-apiserver to load it; resolves the ms the restart took.
 */
export async function auditUser(cluster: FaultCluster, username: string): Promise<number> {
  const rule = `  - level: Metadata\n    users: [${JSON.stringify(username)}]\n`;
  const policy = AUDIT_POLICY.replace('  - level: None\n', `${rule}  - level: None\n`);
  if (policy === AUDIT_POLICY)
    throw new IdentityError('the audit policy of lib/audit.ts has no final "level: None" rule to insert a user rule before');
  await writeFile(join(cluster.dir, 'config', 'audit-policy.yaml'), policy);
  // The policy file is read at start only; SIGKILL because a graceful stop waits for the other programs' watches.
  return (await cluster.restartApiserver({ signal: 'SIGKILL' })).downMs;
}

/** How tight the operator's priority level is. */
export interface ThrottleSpec {
  /** The PriorityLevelConfiguration's nominalConcurrencyShares (the server's seats are split by shares over all levels). */
  nominalConcurrencyShares: number;
  /** One queue of this many requests; a request arriving when it is full is refused with 429. */
  queueLengthLimit: number;
}

const FLOWCONTROL = '/apis/flowcontrol.apiserver.k8s.io/v1';

/**
 * API Priority and Fairness for `identity` alone: a Limited PriorityLevelConfiguration that neither
 * lends nor borrows seats, with one short queue, and a FlowSchema that sends every request of the
 * ServiceAccount to it ahead of the built-in schemas. Resolves once the API server's APF controller
 * has taken the FlowSchema in (its Dangling condition is False: it found the priority level).
 */
export async function throttle(cluster: FaultCluster, identity: OperatorIdentity, name: string, spec: ThrottleSpec): Promise<void> {
  const admin = cluster.client;
  await admin.request({
    method: 'POST',
    path: `${FLOWCONTROL}/prioritylevelconfigurations`,
    body: {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'PriorityLevelConfiguration',
      metadata: { name },
      spec: {
        type: 'Limited',
        limited: {
          nominalConcurrencyShares: spec.nominalConcurrencyShares,
          lendablePercent: 0,
          borrowingLimitPercent: 0,
          limitResponse: { type: 'Queue', queuing: { queues: 1, handSize: 1, queueLengthLimit: spec.queueLengthLimit } },
        },
      },
    },
  });
  await admin.request({
    method: 'POST',
    path: `${FLOWCONTROL}/flowschemas`,
    body: {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name },
      spec: {
        priorityLevelConfiguration: { name },
        // Below every built-in schema but exempt (1) and probes: the operator's requests all land here.
        matchingPrecedence: 100,
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: identity.name, namespace: identity.namespace } }],
            resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true }],
            nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
          },
        ],
      },
    },
  });
  const until = performance.now() + 30_000;
  for (;;) {
    const fs = await admin.request<{ status?: { conditions?: { type: string; status: string }[] } }>({
      method: 'GET',
      path: `${FLOWCONTROL}/flowschemas/${name}`,
    });
    const dangling = fs.status?.conditions?.find((c) => c.type === 'Dangling');
    if (dangling?.status === 'False') return;
    if (performance.now() > until)
      throw new IdentityError(
        `FlowSchema ${name}: the API server has not taken it in 30 s after its creation (Dangling=${dangling?.status ?? 'absent'})`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
