/** Identifies one API resource type: what the URL path and the objects' apiVersion/kind are built from. */
export interface ResourceType {
  /** API group; '' for the core group (Pods, Secrets, Events). */
  group: string;
  /** API version within the group, e.g. 'v1'. */
  version: string;
  /** Kind as it appears in objects, e.g. 'Message'. */
  kind: string;
  /** Lower-case plural used in URL paths, e.g. 'messages'. */
  plural: string;
  /** Whether objects live in namespaces. */
  namespaced: boolean;
}

/** Object metadata as bosun reads it; unknown fields are kept. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
  [key: string]: unknown;
}

/** A reference from a child to the object that owns it; `controller: true` marks the one managing owner. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object; typed resources narrow spec and status. */
export interface KubeObject<Spec = unknown, Status = unknown> {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
  [key: string]: unknown;
}

/** The apiVersion string ('v1' or 'group/version') of a resource type. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** The cache and queue key of an object: 'namespace/name', or 'name' for cluster-scoped objects. */
export function keyOf(obj: { metadata: { namespace?: string; name?: string } }): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}
