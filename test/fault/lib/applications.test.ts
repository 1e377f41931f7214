// The Application invariants on hand-made end states: a converged one passes, each kind of breakage is named.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { Deployment, Service } from '../../../packages/bosun/src/client/resources.js';
import type { Application } from '../../../operators/application/resource.js';
import { applicationViolations, applicationWrites, type AppNamespaceState } from './applications.js';
import type { AuditEvent } from './audit.js';

const spec = { image: 'nginx:1.27', replicas: 1, port: 8080 };
const managed = { app: 'a', 'app.kubernetes.io/managed-by': 'bosun-application' };
const ref = (uid: string) => [{ apiVersion: 'shclub.github.io/v1', kind: 'Application', name: 'a', uid, controller: true }];

function converged(): AppNamespaceState {
  const app = {
    metadata: { name: 'a', namespace: 'n', uid: 'u1', generation: 2 },
    spec: { ...spec },
    status: {
      replicas: 1,
      readyReplicas: 1,
      observedGeneration: 2,
      conditions: [{ type: 'Ready', status: 'True', reason: 'ReplicasReady', message: '', lastTransitionTime: '' }],
    },
  } as unknown as Application;
  const dep = {
    metadata: { name: 'a', namespace: 'n', uid: 'd1', generation: 1, labels: managed, ownerReferences: ref('u1') },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'a' } },
      template: { spec: { containers: [{ name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 8080 }] }] } },
    },
    status: { observedGeneration: 1, replicas: 1, readyReplicas: 1 },
  } as unknown as Deployment;
  const svc = {
    metadata: { name: 'a', namespace: 'n', uid: 's1', labels: managed, ownerReferences: ref('u1') },
    spec: { type: 'ClusterIP', selector: { app: 'a' }, ports: [{ port: 8080, targetPort: 8080 }] },
  } as unknown as Service;
  return { applications: [app], deployments: [dep], services: [svc] };
}

test('a converged Application and its two children break no invariant', () => {
  assert.deepEqual(applicationViolations(converged(), new Map([['a', spec]])), []);
});

test('each breakage is named: not Ready, untruthful status, stale child, second child, orphan, lost deletion and creation', () => {
  const cases: [string, (s: AppNamespaceState) => void, RegExp, Map<string, typeof spec>?][] = [
    ['not Ready', (s) => (s.applications[0]!.status!.conditions![0]!.status = 'False'), /Ready=False/],
    ['old generation', (s) => (s.applications[0]!.metadata.generation = 3), /observedGeneration 2 ≠ generation 3/],
    ['status lies', (s) => (s.deployments[0]!.status!.readyReplicas = 0), /status says 1\/1 ready, Deployment a 0\/1/],
    ['image differs', (s) => (s.deployments[0]!.spec!.template.spec!.containers[0]!.image = 'evil'), /runs image evil/],
    ['replicas differ', (s) => (s.applications[0]!.spec!.replicas = 2), /spec.replicas 1, the Application 2/],
    ['service port', (s) => (s.services[0]!.spec!.ports![0]!.targetPort = 80), /maps 8080 → 80/],
    ['no Service', (s) => (s.services = []), /0 Services controlled by it/],
    [
      'two Deployments',
      (s) => s.deployments.push({ ...s.deployments[0]!, metadata: { ...s.deployments[0]!.metadata, name: 'a2', uid: 'd2' } }),
      /2 Deployments controlled by it/,
    ],
    ['orphan', (s) => (s.applications[0]!.metadata.uid = 'u9'), /orphan Deployment a: controller u1/],
    ['creation lost', (s) => (s.applications = []), /Application a is missing/, new Map([['a', spec]])],
    ['deletion lost', () => undefined, /exists but was deleted/, new Map()],
  ];
  for (const [what, breakIt, re, expected] of cases) {
    const s = converged();
    breakIt(s);
    const v = applicationViolations(s, expected);
    assert.ok(
      v.some((x) => re.test(x)),
      `${what}: ${JSON.stringify(v)}`,
    );
  }
});

test("applicationWrites counts the operator's writes to an Application and its same-name children only", () => {
  const at = '2026-01-01T00:00:10Z';
  const e = (verb: string, resource: string, name: string, userAgent = 'bosun', namespace = 'n'): AuditEvent => ({
    auditID: '',
    stage: 'RequestReceived',
    verb,
    requestURI: '',
    userAgent,
    objectRef: { resource, name, namespace },
    requestReceivedTimestamp: at,
  });
  const events = [
    e('patch', 'deployments', 'a'),
    e('patch', 'services', 'a'),
    e('patch', 'applications', 'a'),
    e('get', 'applications', 'a'),
    e('patch', 'deployments', 'a', 'bosun-fault-test'),
    e('patch', 'pods', 'a'),
    e('patch', 'deployments', 'a', 'bosun', 'other'),
  ];
  assert.deepEqual([...applicationWrites(events, { since: new Date('2026-01-01T00:00:00Z'), namespace: 'n' })], [['a', 3]]);
});
