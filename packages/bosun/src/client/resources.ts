// The built-in kinds operators use. Each name is both a value (the handle the client, cache and builder take)
// and a type (the object), so `import { Pod } from 'bosun'` gives `cache.get(Pod, ns, name): Pod | undefined`.
// The object types are written by hand rather than taken from @kubernetes/client-node: its V1Pod and friends
// are classes with an optional `metadata` and `Date` timestamps, while bosun's client hands out the JSON as
// parsed (timestamps are strings). They name the fields operators read and keep the rest through index signatures.
import type { JSONSchemaProps } from '../resource/structural.js';
import type { KubeObject, ResourceType } from './types.js';

/** A label selector as Deployments and Services use it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** A condition of a built-in object (Pod, Deployment, CRD): `type` is unique within the list. */
export interface ObjectCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  [key: string]: unknown;
}

/** One container of a Pod spec. */
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; [key: string]: unknown }[];
  ports?: { name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' | 'SCTP'; [key: string]: unknown }[];
  [key: string]: unknown;
}

/** The state of a container: at most one of waiting, running or terminated is set. */
export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string; [key: string]: unknown };
}

/** The status of one container of a Pod. */
export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  image?: string;
  state?: ContainerState;
  lastState?: ContainerState;
  [key: string]: unknown;
}

/** core/v1 PodSpec: the containers and how they run. */
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  nodeName?: string;
  serviceAccountName?: string;
  [key: string]: unknown;
}

/** core/v1 PodStatus. */
export interface PodStatus {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  conditions?: ObjectCondition[];
  containerStatuses?: ContainerStatus[];
  podIP?: string;
  startTime?: string;
  reason?: string;
  message?: string;
  [key: string]: unknown;
}

/** A core/v1 Pod. */
export type Pod = KubeObject<PodSpec, PodStatus>;
/** Core v1 Pods. */
export const Pod: ResourceType<Pod> = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };

/** The object a core/v1 Event is about. */
export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** A core/v1 Event (what `kubectl describe` shows). */
export interface Event extends KubeObject<never, never> {
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  type?: 'Normal' | 'Warning';
  count?: number;
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
}
/** Core v1 Events (the API `kubectl describe` shows). */
export const Event: ResourceType<Event> = { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };

/** apps/v1 DeploymentSpec. */
export interface DeploymentSpec {
  replicas?: number;
  selector: LabelSelector;
  template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: PodSpec };
  [key: string]: unknown;
}

/** apps/v1 DeploymentStatus. */
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: ObjectCondition[];
  [key: string]: unknown;
}

/** An apps/v1 Deployment. */
export type Deployment = KubeObject<DeploymentSpec, DeploymentStatus>;
/** apps/v1 Deployments. */
export const Deployment: ResourceType<Deployment> = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};

/** One port of a core/v1 Service. */
export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  nodePort?: number;
  [key: string]: unknown;
}

/** core/v1 ServiceSpec. */
export interface ServiceSpec {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  selector?: Record<string, string>;
  ports?: ServicePort[];
  clusterIP?: string;
  [key: string]: unknown;
}

/** A core/v1 Service. */
export type Service = KubeObject<ServiceSpec, { [key: string]: unknown }>;
/** Core v1 Services. */
export const Service: ResourceType<Service> = { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true };

/** A core/v1 Secret; `data` values are base64, `stringData` is write-only plain text. */
export interface Secret extends KubeObject<never, never> {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  immutable?: boolean;
}
/** Core v1 Secrets. */
export const Secret: ResourceType<Secret> = { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true };

/** A core/v1 ConfigMap; `binaryData` values are base64. */
export interface ConfigMap extends KubeObject<never, never> {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}
/** Core v1 ConfigMaps. */
export const ConfigMap: ResourceType<ConfigMap> = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

/** coordination.k8s.io/v1 LeaseSpec: who holds the lease and until when (times are RFC 3339 with microseconds). */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

/** A coordination.k8s.io/v1 Lease. */
export type Lease = KubeObject<LeaseSpec, never>;
/** coordination.k8s.io/v1 Leases, used for leader election. */
export const Lease: ResourceType<Lease> = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  namespaced: true,
};

/** A core/v1 Namespace; `status.phase` is Terminating while it is being deleted. */
export type Namespace = KubeObject<{ finalizers?: string[] }, { phase?: 'Active' | 'Terminating'; conditions?: ObjectCondition[] }>;
/** Core v1 Namespaces (cluster-scoped). */
export const Namespace: ResourceType<Namespace> = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  namespaced: false,
};

/** One version of a CustomResourceDefinition as the API server returns it. */
export interface CustomResourceDefinitionVersion {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  schema?: { openAPIV3Schema?: JSONSchemaProps };
  subresources?: { status?: Record<string, never>; scale?: Record<string, unknown> };
  additionalPrinterColumns?: { name: string; type: string; jsonPath: string; description?: string; priority?: number; format?: string }[];
  [key: string]: unknown;
}

/** apiextensions.k8s.io/v1 CustomResourceDefinitionSpec. */
export interface CustomResourceDefinitionSpec {
  group: string;
  names: { kind: string; plural: string; singular?: string; listKind?: string; shortNames?: string[]; categories?: string[] };
  scope: 'Namespaced' | 'Cluster';
  versions: CustomResourceDefinitionVersion[];
  [key: string]: unknown;
}

/** apiextensions.k8s.io/v1 CustomResourceDefinitionStatus: `Established=True` once the API serves the kind. */
export interface CustomResourceDefinitionStatus {
  conditions?: ObjectCondition[];
  acceptedNames?: { kind?: string; plural?: string; [key: string]: unknown };
  storedVersions?: string[];
  [key: string]: unknown;
}

/** An apiextensions.k8s.io/v1 CustomResourceDefinition as read from the API server. */
export type CustomResourceDefinition = KubeObject<CustomResourceDefinitionSpec, CustomResourceDefinitionStatus>;
/** apiextensions.k8s.io/v1 CustomResourceDefinitions (cluster-scoped). */
export const CustomResourceDefinition: ResourceType<CustomResourceDefinition> = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};
