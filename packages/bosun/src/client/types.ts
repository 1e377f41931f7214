// Never set at run time: the key only gives ResourceType a property of type T to infer T from.
declare const objectType: unique symbol;

/**
 * Identifies one API resource type: what the URL path and the objects' apiVersion/kind are built from.
 * `T` is the type of its objects, so `cache.get(Pod, ns, name)` is a `Pod | undefined` without a type argument;
 * a plain `ResourceType` describes objects only as `KubeObject`.
 */
export interface ResourceType<T extends KubeObject = KubeObject> {
  /** API group; '' for the core group (Pods, Secrets, Events). */
  readonly group: string;
  /** API version within the group, e.g. 'v1'. */
  readonly version: string;
  /** Kind as it appears in objects, e.g. 'Message'. */
  readonly kind: string;
  /** Lower-case plural used in URL paths, e.g. 'messages'. */
  readonly plural: string;
  /** Whether objects live in namespaces. */
  readonly namespaced: boolean;
  /** Type-level only (no value ever has it): the object type `T` that APIs taking this handle infer. */
  readonly [objectType]?: T;
}

/** The object type a resource handle describes: `ObjectOf<typeof Pod>` is `Pod`, `ObjectOf<typeof MessageResource>` the Message. */
export type ObjectOf<R> = R extends ResourceType<infer T> ? T : never;

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
