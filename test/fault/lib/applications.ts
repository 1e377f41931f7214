// What must hold for Applications at the end of a fault scenario, read straight from the API server:
// every Application Ready for its generation with a status that tells the truth about its
// Deployment, exactly one Deployment and one Service controlled by it that match its spec, no
// orphan child, no creation or deletion lost; and, from the audit log, a bound on the operator's
// writes to one Application and its children.
import type { KubeClient } from '../../../packages/bosun/src/client/client.js';
import {
  Deployment as DeploymentType,
  Service as ServiceType,
  type Deployment,
  type Service,
} from '../../../packages/bosun/src/client/resources.js';
import type { KubeObject, ResourceType } from '../../../packages/bosun/src/client/types.js';
import { MANAGED_LABELS } from '../../../operators/application/children.js';
import { ApplicationResource, type Application } from '../../../operators/application/resource.js';
import { OPERATOR_USER_AGENT, type AuditEvent } from './audit.js';
import { describeViolations, InvariantError } from './invariants.js';

/** What an Application's spec must be at the end. */
export interface AppSpec {
  image: string;
  replicas: number;
  port: number;
}

/** What the Applications of a namespace must be at the end: name → spec. */
export type ExpectedApps = Map<string, AppSpec>;

/** The Applications, Deployments and Services of one namespace, as the API server has them. */
export interface AppNamespaceState {
  applications: Application[];
  deployments: Deployment[];
  services: Service[];
}

async function listAll<T extends KubeObject>(client: KubeClient, type: ResourceType<T>, namespace: string): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await client.list<T>(type, { namespace, limit: 500, continue: cont });
    out.push(...page.items);
    cont = page.continue;
  } while (cont);
  return out;
}

/** Reads every Application, Deployment and Service of `namespace` from the API server. */
export async function readApplications(client: KubeClient, namespace: string): Promise<AppNamespaceState> {
  const [applications, deployments, services] = await Promise.all([
    listAll<Application>(client, ApplicationResource, namespace),
    listAll<Deployment>(client, DeploymentType, namespace),
    listAll<Service>(client, ServiceType, namespace),
  ]);
  return { applications, deployments, services };
}

function controllerRef(o: KubeObject): { uid?: string; kind?: string } | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller === true);
}

function isManaged(o: KubeObject): boolean {
  return Object.entries(MANAGED_LABELS).every(([k, v]) => o.metadata.labels?.[k] === v);
}

const sameLabels = (a: Record<string, string> | undefined, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b).sort());

/**
 * Every broken invariant of `state` (empty when all hold):
 * - each Application is Ready=True for its current generation (observedGeneration = generation);
 * - its status is truthful: status.replicas and status.readyReplicas are its Deployment's, the
 *   Deployment controller has seen the Deployment's current spec, and Ready means spec.replicas ready;
 * - exactly one Deployment and one Service are controlled by it (ownerReference uid = its uid), none
 *   being deleted, and they match its spec: replicas, image, container port, selector `app: <name>`,
 *   a ClusterIP Service from spec.port to spec.port;
 * - no orphan: every Deployment or Service of the operator (its labels), or controlled by an
 *   Application, is controlled by an Application that exists;
 * - with `expected`: the Applications are exactly the expected names with the expected specs.
 */
export function applicationViolations(state: AppNamespaceState, expected?: ExpectedApps): string[] {
  const out: string[] = [];
  const byUid = new Map(state.applications.map((a) => [a.metadata.uid!, a]));
  const owned = <T extends KubeObject>(kind: string, objects: T[]): Map<string, T[]> => {
    const m = new Map<string, T[]>();
    for (const o of objects) {
      const ref = controllerRef(o);
      const ours = isManaged(o) || ref?.kind === 'Application';
      if (!ref?.uid || !byUid.has(ref.uid)) {
        if (ours) out.push(`orphan ${kind} ${o.metadata.name}: controller ${ref?.uid ?? 'none'} is no Application that exists`);
        continue;
      }
      if (o.metadata.deletionTimestamp) out.push(`${kind} ${o.metadata.name} is being deleted`);
      m.set(ref.uid, [...(m.get(ref.uid) ?? []), o]);
    }
    return m;
  };
  const deps = owned('Deployment', state.deployments);
  const svcs = owned('Service', state.services);
  for (const a of state.applications) {
    const name = a.metadata.name!;
    const uid = a.metadata.uid!;
    const want = a.spec;
    const ready = a.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True')
      out.push(`Application ${name}: Ready=${ready?.status ?? 'absent'} (${ready?.reason ?? 'no reason'}: ${ready?.message ?? ''})`);
    if (a.status?.observedGeneration !== a.metadata.generation) {
      out.push(
        `Application ${name}: status.observedGeneration ${a.status?.observedGeneration ?? 'absent'} ≠ generation ${a.metadata.generation}`,
      );
    }
    const d = deps.get(uid) ?? [];
    const s = svcs.get(uid) ?? [];
    if (d.length !== 1)
      out.push(
        `Application ${name}: ${d.length} Deployments controlled by it (${d.map((x) => x.metadata.name).join(', ') || 'none'}); want exactly 1`,
      );
    if (s.length !== 1)
      out.push(
        `Application ${name}: ${s.length} Services controlled by it (${s.map((x) => x.metadata.name).join(', ') || 'none'}); want exactly 1`,
      );
    const labels = { app: name };
    const dep = d[0];
    if (dep) {
      const c = dep.spec?.template.spec?.containers?.[0];
      if (dep.spec?.replicas !== want?.replicas)
        out.push(
          `Application ${name}: Deployment ${dep.metadata.name} has spec.replicas ${dep.spec?.replicas}, the Application ${want?.replicas}`,
        );
      if (c?.image !== want?.image)
        out.push(`Application ${name}: Deployment ${dep.metadata.name} runs image ${c?.image}, the Application ${want?.image}`);
      if (c?.ports?.[0]?.containerPort !== want?.port)
        out.push(
          `Application ${name}: Deployment ${dep.metadata.name} has containerPort ${c?.ports?.[0]?.containerPort}, the Application port ${want?.port}`,
        );
      if (!sameLabels(dep.spec?.selector.matchLabels, labels))
        out.push(
          `Application ${name}: Deployment ${dep.metadata.name} selects ${JSON.stringify(dep.spec?.selector.matchLabels)}, want ${JSON.stringify(labels)}`,
        );
      if ((dep.status?.observedGeneration ?? 0) < (dep.metadata.generation ?? 0))
        out.push(
          `Application ${name}: Deployment ${dep.metadata.name} generation ${dep.metadata.generation} not yet observed by its controller`,
        );
      if (
        (a.status?.replicas ?? 0) !== (dep.status?.replicas ?? 0) ||
        (a.status?.readyReplicas ?? 0) !== (dep.status?.readyReplicas ?? 0)
      ) {
        out.push(
          `Application ${name}: status says ${a.status?.readyReplicas ?? 0}/${a.status?.replicas ?? 0} ready, Deployment ${dep.metadata.name} ${dep.status?.readyReplicas ?? 0}/${dep.status?.replicas ?? 0}`,
        );
      }
      if (ready?.status === 'True' && (a.status?.readyReplicas ?? 0) !== (want?.replicas ?? 0))
        out.push(`Application ${name}: Ready=True with ${a.status?.readyReplicas ?? 0} ready of ${want?.replicas} replicas`);
    }
    const svc = s[0];
    if (svc) {
      const p = svc.spec?.ports?.[0];
      if (svc.spec?.type !== 'ClusterIP')
        out.push(`Application ${name}: Service ${svc.metadata.name} is ${svc.spec?.type}, want ClusterIP`);
      if (p?.port !== want?.port || p?.targetPort !== want?.port)
        out.push(
          `Application ${name}: Service ${svc.metadata.name} maps ${p?.port} → ${p?.targetPort}, the Application port ${want?.port}`,
        );
      if (!sameLabels(svc.spec?.selector, labels))
        out.push(
          `Application ${name}: Service ${svc.metadata.name} selects ${JSON.stringify(svc.spec?.selector)}, want ${JSON.stringify(labels)}`,
        );
    }
  }
  if (expected) {
    const live = new Map(state.applications.map((a) => [a.metadata.name!, a]));
    for (const [name, spec] of expected) {
      const a = live.get(name);
      if (!a) out.push(`Application ${name} is missing (a creation lost)`);
      else if (a.spec?.image !== spec.image || a.spec.replicas !== spec.replicas || a.spec.port !== spec.port)
        out.push(`Application ${name}: spec ${JSON.stringify(a.spec)} is not the spec last written ${JSON.stringify(spec)}`);
    }
    for (const name of live.keys()) if (!expected.has(name)) out.push(`Application ${name} exists but was deleted (a deletion lost)`);
  }
  return out;
}

/**
 * Polls the API server until every Application invariant holds; resolves the ms from `since` (a
 * performance.now() value) at which it first did, or throws InvariantError with the violations
 * still present at `timeoutMs`.
 */
export async function waitApplicationsConverged(
  client: KubeClient,
  namespace: string,
  opts: { since: number; timeoutMs: number; expected?: ExpectedApps; intervalMs?: number },
): Promise<{ ms: number; state: AppNamespaceState }> {
  const until = performance.now() + opts.timeoutMs;
  for (;;) {
    const state = await readApplications(client, namespace).catch((err: Error) => err);
    if (!(state instanceof Error)) {
      const v = applicationViolations(state, opts.expected);
      if (v.length === 0) return { ms: performance.now() - opts.since, state };
      if (performance.now() > until)
        throw new InvariantError(`Applications not converged ${opts.timeoutMs} ms after the start: ${describeViolations(v)}`);
    } else if (performance.now() > until) {
      throw new InvariantError(`could not read the Applications of namespace ${namespace} at the deadline: ${state.message}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

/** The Application manifest for `name` with `spec`. */
export function applicationObject(namespace: string, name: string, spec: AppSpec): Application {
  return { apiVersion: 'shclub.github.io/v1', kind: 'Application', metadata: { name, namespace }, spec: { ...spec } } as Application;
}

/** Creates the Applications of `specs` in `namespace`, `concurrency` at a time; resolves their uids by name. */
export async function createApplications(
  client: KubeClient,
  namespace: string,
  specs: ExpectedApps,
  concurrency = 16,
): Promise<Map<string, string>> {
  const uids = new Map<string, string>();
  const todo = [...specs];
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const [name, spec] = todo[next++]!;
      const created = await client.create<Application>(ApplicationResource, applicationObject(namespace, name, spec));
      uids.set(name, created.metadata.uid!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return uids;
}

/** `n` Applications `prefix-000`… of one replica each (kwok runs their Pods), as an expectation to create from. */
export function appSpecs(
  prefix: string,
  n: number,
  from = 0,
  spec: AppSpec = { image: 'nginx:1.27', replicas: 1, port: 8080 },
): ExpectedApps {
  return new Map(Array.from({ length: n }, (_, i) => [`${prefix}-${String(from + i).padStart(4, '0')}`, { ...spec }]));
}

const APP_RESOURCES = new Set(['applications', 'deployments', 'services']);
const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/**
 * The operator's writes (requests received, from the audit log) to each Application and its
 * Deployment and Service, which share its name, in `namespace` since `since`.
 */
export function applicationWrites(events: AuditEvent[], opts: { since: Date; namespace: string; userAgent?: string }): Map<string, number> {
  const ua = opts.userAgent ?? OPERATOR_USER_AGENT;
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.stage !== 'RequestReceived' || e.userAgent !== ua || !WRITES.has(e.verb) || e.objectRef?.namespace !== opts.namespace) continue;
    if (!APP_RESOURCES.has(e.objectRef.resource ?? '') || !e.objectRef.name) continue;
    if (Date.parse(e.requestReceivedTimestamp) < opts.since.getTime()) continue;
    out.set(e.objectRef.name, (out.get(e.objectRef.name) ?? 0) + 1);
  }
  return out;
}

/** The Application with the most writes, and how many. */
export function maxApplicationWrites(writes: Map<string, number>): { name: string; writes: number } {
  let max = { name: '', writes: 0 };
  for (const [name, n] of writes) if (n > max.writes) max = { name, writes: n };
  return max;
}

/** The Applications whose writes exceed `bound`, as violations. */
export function applicationWriteViolations(writes: Map<string, number>, bound: number): string[] {
  return [...writes]
    .filter(([, n]) => n > bound)
    .map(([name, n]) => `${n} writes to Application ${name} and its Deployment and Service, more than the bound ${bound}`);
}
