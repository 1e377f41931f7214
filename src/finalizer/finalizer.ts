import type { KubeClient } from '../client/client.js';
import type { KubeObject, ResourceType } from '../client/types.js';

/** Whether the object carries the finalizer. */
export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/**
 * Adds `finalizer` to the object. A JSON-patch `test` of the current list makes the write fail
 * with a conflict (and be retried) instead of dropping a finalizer another writer just added.
 */
export async function addFinalizer(client: KubeClient, type: ResourceType, obj: KubeObject, finalizer: string, fieldManager?: string): Promise<KubeObject> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const current = obj.metadata.finalizers;
  const ops = current
    ? [{ op: 'test', path: '/metadata/finalizers', value: current }, { op: 'add', path: '/metadata/finalizers/-', value: finalizer }]
    : [{ op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion }, { op: 'add', path: '/metadata/finalizers', value: [finalizer] }];
  return client.patch(type, obj.metadata.namespace, obj.metadata.name ?? '', ops, 'json', { fieldManager });
}

/** Removes `finalizer` from the object, guarded the same way; the API server then completes a pending deletion. */
export async function removeFinalizer(client: KubeClient, type: ResourceType, obj: KubeObject, finalizer: string, fieldManager?: string): Promise<KubeObject> {
  const current = obj.metadata.finalizers ?? [];
  const i = current.indexOf(finalizer);
  if (i < 0) return obj;
  const ops = [
    { op: 'test', path: '/metadata/finalizers', value: current },
    { op: 'remove', path: `/metadata/finalizers/${i}` },
  ];
  return client.patch(type, obj.metadata.namespace, obj.metadata.name ?? '', ops, 'json', { fieldManager });
}
