// What an Application should own: a Deployment and a ClusterIP Service, and the status they imply.
import type { KubeObject } from 'bosun';
import type { Application } from './resource.js';

/** Labels the operator's watches select on, so the caches hold only Application children. */
export const MANAGED_LABELS = { 'app.kubernetes.io/managed-by': 'bosun-application' } as const;

/** A Deployment as this operator reads it. */
export type DeploymentObject = KubeObject<
  unknown,
  {
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  }
>;

/** The Ready reason of an Application whose Deployment cannot create Pods (the Deployment's ReplicaFailure condition). */
export const REPLICA_FAILURE = 'ReplicaFailure';

/** The labels of an Application's Deployment, Service and Pods: `app: <name>` selects the Pods. */
export function appLabels(app: Application): Record<string, string> {
  return { app: app.metadata.name ?? '' };
}

/** The Deployment an Application should have: its image, replicas and port, under the restricted Pod Security profile. */
export function desiredDeployment(app: Application): DeploymentObject {
  const labels = appLabels(app);
  return {
    metadata: { name: app.metadata.name, namespace: app.metadata.namespace, labels: { ...labels, ...MANAGED_LABELS } },
    spec: {
      replicas: app.spec?.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          // runAsUser too: runAsNonRoot alone makes the kubelet refuse images whose user is root.
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'app',
              image: app.spec?.image,
              ports: [{ name: 'http', containerPort: app.spec?.port, protocol: 'TCP' }],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
            },
          ],
        },
      },
    },
  };
}

/** The ClusterIP Service an Application should have: its port to the same port on its Pods. */
export function desiredService(app: Application): KubeObject {
  return {
    metadata: { name: app.metadata.name, namespace: app.metadata.namespace, labels: { ...appLabels(app), ...MANAGED_LABELS } },
    spec: {
      type: 'ClusterIP',
      selector: appLabels(app),
      ports: [{ name: 'http', port: app.spec?.port, targetPort: app.spec?.port, protocol: 'TCP' }],
    },
  };
}

/** The Application status a Deployment implies: replica counts and the Ready condition. */
export function statusFromDeployment(
  app: Application,
  dep: DeploymentObject | undefined,
): {
  fields: { replicas: number; readyReplicas: number };
  ready: { status: 'True' | 'False'; reason: string; message: string };
} {
  const name = app.metadata.name ?? '';
  const want = app.spec?.replicas ?? 0;
  const replicas = dep?.status?.replicas ?? 0;
  const ready = dep?.status?.readyReplicas ?? 0;
  const fields = { replicas, readyReplicas: ready };
  if (!dep) return { fields, ready: { status: 'False', reason: 'DeploymentMissing', message: `Creating Deployment ${name}` } };
  // A Deployment whose controller has not seen the latest spec reports counts of the old one.
  const current = (dep.status?.observedGeneration ?? 0) >= (dep.metadata.generation ?? 0);
  if (current && replicas === want && ready === want && (dep.status?.updatedReplicas ?? 0) === want) {
    return want === 0
      ? { fields, ready: { status: 'True', reason: 'ScaledToZero', message: `Deployment ${name} runs no replicas, as asked` } }
      : {
          fields,
          ready: { status: 'True', reason: 'ReplicasReady', message: `${ready}/${want} replicas of Deployment ${name} are ready` },
        };
  }
  // Pods the API server refuses (an invalid image, a quota) never come: say why, not only how many are missing.
  const failure = dep.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (failure) {
    return {
      fields,
      ready: {
        status: 'False',
        reason: REPLICA_FAILURE,
        message: `Deployment ${name} cannot create Pods: ${failure.message ?? failure.reason ?? 'no reason given'}`,
      },
    };
  }
  if (!current) {
    // Edits that bump the generation without changing what runs (annotations) land here briefly, with every replica ready.
    const gen = dep.metadata.generation ?? 0;
    const seen = dep.status?.observedGeneration ?? 0;
    return {
      fields,
      ready: {
        status: 'False',
        reason: 'DeploymentNotObserved',
        message: `Deployment ${name}'s controller has not observed its generation ${gen} yet (last observed ${seen}); ${ready}/${want} replicas were ready then`,
      },
    };
  }
  return {
    fields,
    ready: { status: 'False', reason: 'ReplicasNotReady', message: `${ready}/${want} replicas of Deployment ${name} are ready` },
  };
}
