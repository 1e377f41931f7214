// The test resource of the admission benchmark (bench/webhook.ts) and its one validating webhook, shared by the
// bench and the bosun contender's server program: latency.bench.bosun.dev/v1 Widget, spec.size an integer,
// refused above 100. The controller-runtime peer (bench/peers/controller-runtime/cmd/webhook) has the same rule.
import { allow, deny, validatingWebhook, type KubeObject, type ResourceType, type ValidatingWebhook } from 'bosun';

/** The largest spec.size admitted. */
export const MAX_SIZE = 100;

/** A Widget: only spec.size matters. */
export interface Widget extends KubeObject {
  spec: { size: number };
}

/** latency.bench.bosun.dev/v1 Widgets, namespaced; a group of its own, on a control plane of its own. */
export const WidgetResource: ResourceType<Widget> = {
  group: 'latency.bench.bosun.dev',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  namespaced: true,
};

/** The CRD of Widgets: a structural schema with spec.size an integer and nothing the webhook would duplicate. */
export const WIDGET_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${WidgetResource.plural}.${WidgetResource.group}` },
  spec: {
    group: WidgetResource.group,
    scope: 'Namespaced',
    names: { kind: 'Widget', listKind: 'WidgetList', plural: 'widgets', singular: 'widget' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', required: ['size'], properties: { size: { type: 'integer' } } },
            },
          },
        },
      },
    ],
  },
};

/** The webhook name of a contender: the API server's metrics label each webhook's calls by it. */
export function widgetWebhookName(contender: string): string {
  return `${contender}.widgets.${WidgetResource.group}`;
}

/**
 * The validating webhook, declared as a bosun user declares one. The controller-runtime contender is
 * registered from the same declaration (the same rules, failurePolicy and timeout); only its server differs.
 */
export function widgetWebhook(contender: string): ValidatingWebhook<typeof WidgetResource> {
  return validatingWebhook({
    name: widgetWebhookName(contender),
    resource: WidgetResource,
    failurePolicy: 'Fail',
    failurePolicyReason: 'a benchmark: a Widget the webhook did not see must not be stored, so every create measures a call',
    timeoutSeconds: 10,
    operations: ['CREATE', 'UPDATE'],
    validate: ({ object }) => {
      const size = object?.spec?.size ?? 0;
      return size > MAX_SIZE ? deny(`spec.size ${size} is above ${MAX_SIZE}. Fix: ask for at most ${MAX_SIZE}`) : allow();
    },
  });
}
