// Fixture project modules' resources for manifests.test.ts: a Gadget at v1 and v2, and their declarations.
import { Type } from '@sinclair/typebox';
import { defineResource } from '../../../resource/resource.js';
import { allow, defineVersions, deny, mutatingWebhook, spoke, validatingWebhook } from '../../../webhook/declare.js';

const base = {
  group: 'gadgets.example.com',
  kind: 'Gadget',
  plural: 'gadgets',
  scope: 'Namespaced' as const,
  description: 'A test gadget.',
  status: Type.Object({ phase: Type.Optional(Type.String()) }),
};

/** Gadget v1: one size. */
export const GadgetV1 = defineResource({ ...base, version: 'v1', spec: Type.Object({ size: Type.Integer() }) });
/** Gadget v2: width and height. */
export const GadgetV2 = defineResource({
  ...base,
  version: 'v2',
  spec: Type.Object({ width: Type.Integer(), height: Type.Integer() }),
});

/** Served at v1 and v2, hub v2, stored at v1. */
export const gadgetVersions = defineVersions(GadgetV2, {
  spokes: [
    spoke(GadgetV2, {
      resource: GadgetV1,
      toHub: (o) => ({ ...o, spec: { width: o.spec?.size ?? 0, height: o.spec?.size ?? 0 } }),
      fromHub: (o) => ({ ...o, spec: { size: o.spec?.width ?? 0 } }),
    }),
  ],
  storage: GadgetV1,
});

/** A validating webhook that fails closed. */
export const sizeWebhook = validatingWebhook({
  name: 'size.gadgets.example.com',
  resource: GadgetV2,
  failurePolicy: 'Fail',
  failurePolicyReason: 'a gadget wider than the shelf cannot be stored',
  timeoutSeconds: 3,
  validate: (r) => ((r.object?.spec?.width ?? 0) > 100 ? deny('spec.width is over 100') : allow()),
});

/** A mutating webhook that fails open. */
export const defaultsWebhook = mutatingWebhook({
  name: 'defaults.gadgets.example.com',
  resource: GadgetV2,
  failurePolicy: 'Ignore',
  failurePolicyReason: 'the controller applies the same defaults',
  mutate: (o) => o,
});
