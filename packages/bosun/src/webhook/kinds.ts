// The admissionregistration.k8s.io/v1 kinds that point the API server at a webhook server.
import type { ResourceType } from '../client/types.js';

/** admissionregistration.k8s.io/v1 ValidatingWebhookConfigurations (cluster-scoped). */
export const ValidatingWebhookConfiguration: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingWebhookConfiguration',
  plural: 'validatingwebhookconfigurations',
  namespaced: false,
};

/** admissionregistration.k8s.io/v1 MutatingWebhookConfigurations (cluster-scoped). */
export const MutatingWebhookConfiguration: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'MutatingWebhookConfiguration',
  plural: 'mutatingwebhookconfigurations',
  namespaced: false,
};
