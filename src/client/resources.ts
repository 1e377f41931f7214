import type { ResourceType } from './types.js';

/** Core v1 Pods. */
export const Pod: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
/** Core v1 Events (the API `kubectl describe` shows). */
export const Event: ResourceType = { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };
/** apps/v1 Deployments. */
export const Deployment: ResourceType = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};
/** Core v1 Services. */
export const Service: ResourceType = { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true };
/** Core v1 Secrets. */
export const Secret: ResourceType = { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true };
/** Core v1 ConfigMaps. */
export const ConfigMap: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};
/** coordination.k8s.io/v1 Leases, used for leader election. */
export const Lease: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  namespaced: true,
};
/** Core v1 Namespaces (cluster-scoped). */
export const Namespace: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  namespaced: false,
};
/** apiextensions.k8s.io/v1 CustomResourceDefinitions (cluster-scoped). */
export const CustomResourceDefinition: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};
