// Widgets in two versions, the hub v2 and the spoke v1, with webhooks over them: what the webhook
// tests serve and review. v1 holds a bare size in centimetres; v2 a size with its unit.
import { Type } from '@sinclair/typebox';
import { defineResource, type CustomObject } from '../../resource/resource.js';
import { allow, defineVersions, deny, mutatingWebhook, spoke, validatingWebhook, type AdmissionRequest } from '../declare.js';

export const WidgetV2 = defineResource({
  group: 'webhooks.example.com',
  version: 'v2',
  kind: 'Widget',
  plural: 'widgets',
  scope: 'Namespaced',
  description: 'a widget, sized with a unit',
  spec: Type.Object({
    size: Type.Object({ value: Type.Integer(), unit: Type.Union([Type.Literal('cm'), Type.Literal('mm')]) }),
    color: Type.Optional(Type.String()),
  }),
  status: Type.Object({ ready: Type.Optional(Type.Boolean()) }),
});

export const WidgetV1 = defineResource({
  group: 'webhooks.example.com',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  scope: 'Namespaced',
  description: 'a widget, sized in centimetres',
  spec: Type.Object({ sizeCm: Type.Integer(), color: Type.Optional(Type.String()) }),
  status: Type.Object({ ready: Type.Optional(Type.Boolean()) }),
});

export type Widget2 = CustomObject<typeof WidgetV2.specSchema, typeof WidgetV2.statusSchema>;
export type Widget1 = CustomObject<typeof WidgetV1.specSchema, typeof WidgetV1.statusSchema>;

const colorOf = (spec: { color?: string }) => (spec.color === undefined ? {} : { color: spec.color });

/** Where a v1 Widget keeps the exact size of a v2 one measured in millimetres, which sizeCm cannot hold. */
export const EXACT_SIZE = 'webhooks.example.com/exact-size';

export const widgetVersions = defineVersions(WidgetV2, {
  spokes: [
    spoke(WidgetV2, {
      resource: WidgetV1,
      toHub: (o) => {
        if (o.spec!.sizeCm < 0) throw new Error(`spec.sizeCm is negative (${o.spec!.sizeCm})`);
        const { [EXACT_SIZE]: exact, ...annotations } = o.metadata.annotations ?? {};
        const { annotations: _, ...rest } = o.metadata;
        const metadata = Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
        const size = exact
          ? { value: Number(exact.replace(/mm$/, '')), unit: 'mm' as const }
          : { value: o.spec!.sizeCm, unit: 'cm' as const };
        return { ...o, metadata, spec: { size, ...colorOf(o.spec!) } };
      },
      fromHub: (o) => {
        const { value, unit } = o.spec!.size;
        const metadata =
          unit === 'mm' ? { ...o.metadata, annotations: { ...o.metadata.annotations, [EXACT_SIZE]: `${value}mm` } } : o.metadata;
        return { ...o, metadata, spec: { sizeCm: unit === 'mm' ? Math.round(value / 10) : value, ...colorOf(o.spec!) } };
      },
    }),
  ],
  storage: WidgetV1,
});

/** Refuses a widget larger than 100 cm, naming the field; warns about a widget without a colour. */
export const sizeWebhook = validatingWebhook({
  name: 'size.widgets.webhooks.example.com',
  resource: WidgetV2,
  failurePolicy: 'Fail',
  failurePolicyReason: 'a widget too large jams the line',
  timeoutSeconds: 2,
  validate: (req: AdmissionRequest<Widget2>) => {
    const size = req.object?.spec?.size;
    if (size && size.value > 100 && size.unit === 'cm')
      return deny(`spec.size.value ${size.value} cm is larger than the line takes (100 cm); order a smaller widget`, {
        field: 'spec.size.value',
        code: 422,
      });
    return req.object?.spec?.color ? allow() : allow('spec.color is not set: the widget will be grey');
  },
});

/** Defaults the colour and labels the widget with its unit. */
export const defaultsWebhook = mutatingWebhook({
  name: 'defaults.widgets.webhooks.example.com',
  resource: WidgetV2,
  failurePolicy: 'Ignore',
  failurePolicyReason: 'the controller treats a missing colour as grey anyway',
  mutate: (o: Widget2) => {
    o.spec!.color ??= 'grey';
    o.metadata.labels = { ...o.metadata.labels, 'webhooks.example.com/unit': o.spec!.size.unit };
    return o;
  },
});

/** A v2 Widget object as the API server sends it. */
export function widget(name: string, spec: Widget2['spec'], extra: Partial<Widget2['metadata']> = {}): Widget2 {
  return {
    apiVersion: 'webhooks.example.com/v2',
    kind: 'Widget',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '7', generation: 1, ...extra },
    spec,
  };
}

/** An admission.k8s.io/v1 AdmissionReview request as the API server sends it. */
export function admissionReviewOf(
  operation: 'CREATE' | 'UPDATE' | 'DELETE',
  object: object | null,
  oldObject: object | null = null,
  uid = 'e911857d-c318-11e8-bbad-025000000001',
): unknown {
  const o = (object ?? oldObject) as Widget2;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'webhooks.example.com', version: 'v2', kind: 'Widget' },
      resource: { group: 'webhooks.example.com', version: 'v2', resource: 'widgets' },
      requestKind: { group: 'webhooks.example.com', version: 'v2', kind: 'Widget' },
      requestResource: { group: 'webhooks.example.com', version: 'v2', resource: 'widgets' },
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      operation,
      userInfo: { username: 'admin', uid: '014fbff9a07c', groups: ['system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: `${operation[0]}${operation.slice(1).toLowerCase()}Options` },
    },
  };
}

/** An apiextensions.k8s.io/v1 ConversionReview request as the API server sends it. */
export function conversionReviewOf(desiredAPIVersion: string, objects: unknown[], uid = '705ab4f5-6393-11e8-b7cc-42010a800002'): unknown {
  return { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid, desiredAPIVersion, objects } };
}
