import { apiVersionOf, type KubeObject, type OwnerReference, type ResourceType } from '../client/types.js';
import { PermanentError } from '../controller/request.js';
import { bosunError } from '../errors.js';
import { OwnerMetadataError } from './errors.js';

/**
 * The controller owner reference to put on a child: garbage collection deletes the child with
 * its owner, and `owns()` maps the child's changes back to the owner.
 */
export function controllerRef(ownerType: ResourceType, owner: KubeObject): OwnerReference {
  const { name, uid } = owner.metadata;
  if (!name || !uid)
    throw new OwnerMetadataError(
      `cannot own a child by ${ownerType.kind} without metadata.name and metadata.uid (read the owner from the API first)`,
    );
  return { apiVersion: apiVersionOf(ownerType), kind: ownerType.kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/** Whether `child` is controlled by `owner` (its controller reference carries the owner's uid). */
export function isControlledBy(child: KubeObject, owner: KubeObject): boolean {
  return child.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === owner.metadata.uid) ?? false;
}

/**
 * Raised when a child cannot be owned by its would-be owner because of their scopes: the garbage
 * collector deletes a child whose owner is in another namespace at once, and never collects a
 * cluster-scoped child of a namespaced owner.
 */
export class OwnerScopeError extends bosunError('BOSUN_OWNER_SCOPE', PermanentError) {
  override name = 'OwnerScopeError';

  constructor(message: string) {
    // Permanent: the operator's desired state is wrong, and retrying the same write cannot help.
    super('OwnerScope', message);
  }
}

/**
 * The namespace a child of `childType` gets when `owner` controls it, refusing what the garbage
 * collector cannot honour (as controller-runtime's SetControllerReference does): a cluster-scoped
 * child of a namespaced owner, a child in another namespace than its namespaced owner, and a
 * namespaced child of a cluster-scoped owner that names no namespace.
 */
export function childNamespace(childType: ResourceType, child: KubeObject, ownerType: ResourceType, owner: KubeObject): string | undefined {
  const ownerNs = ownerType.namespaced ? owner.metadata.namespace : undefined;
  const childName = child.metadata.name ?? '';
  const ownerDesc = `${ownerType.kind} ${ownerNs ? `${ownerNs}/` : ''}${owner.metadata.name ?? ''}`;
  if (!childType.namespaced) {
    if (ownerNs) {
      throw new OwnerScopeError(
        `${childType.kind} ${childName} is cluster-scoped and cannot be owned by the namespaced ${ownerDesc}: the garbage collector would never delete it; own it by a cluster-scoped object, or write it with ctx.client.apply without an owner reference`,
      );
    }
    return undefined;
  }
  const ns = child.metadata.namespace ?? ownerNs;
  if (!ns) {
    throw new OwnerScopeError(
      `${childType.kind} ${childName} needs metadata.namespace: its owner ${ownerDesc} is cluster-scoped, so the child's namespace cannot come from it; set it in the desired object`,
    );
  }
  if (ownerNs && ns !== ownerNs) {
    throw new OwnerScopeError(
      `${childType.kind} ${ns}/${childName} cannot be owned by ${ownerDesc}: owner references cannot cross namespaces (the garbage collector deletes such a child at once); create it in namespace ${ownerNs}, or leave metadata.namespace unset`,
    );
  }
  return ns;
}
