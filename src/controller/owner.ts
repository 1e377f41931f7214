import { apiVersionOf, type KubeObject, type OwnerReference, type ResourceType } from '../client/types.js';

/**
 * The controller owner reference to put on a child: garbage collection deletes the child with
 * its owner, and `owns()` maps the child's changes back to the owner.
 */
export function controllerRef(ownerType: ResourceType, owner: KubeObject): OwnerReference {
  const { name, uid } = owner.metadata;
  if (!name || !uid) throw new Error(`cannot own a child by ${ownerType.kind} without metadata.name and metadata.uid (read the owner from the API first)`);
  return { apiVersion: apiVersionOf(ownerType), kind: ownerType.kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/** Whether `child` is controlled by `owner` (its controller reference carries the owner's uid). */
export function isControlledBy(child: KubeObject, owner: KubeObject): boolean {
  return child.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === owner.metadata.uid) ?? false;
}
