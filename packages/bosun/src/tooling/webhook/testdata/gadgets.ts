// Test-only declarations: a Gadget kind in a group of the test's own (so its CRD and conversion touch nothing
// else on the shared test cluster), served at v1 (hub and storage) and v2, with the webhooks the tests exercise.
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { defineResource, type CustomResource } from '../../../resource/resource.js';
import type { ObjectOf } from '../../../client/types.js';
import { allow, defineVersions, deny, mutatingWebhook, spoke, validatingWebhook, type FailurePolicy } from '../../../webhook/declare.js';

const status = Type.Object({ phase: Type.Optional(Type.String()) });

function gadgetV1(group: string) {
  return defineResource({
    group,
    version: 'v1',
    kind: 'Gadget',
    plural: 'gadgets',
    scope: 'Namespaced',
    description: 'A test gadget (v1: owner and size as plain fields).',
    spec: Type.Object({
      owner: Type.String(),
      sizeCm: Type.Integer({ minimum: 1 }),
      color: Type.Optional(Type.String()),
    }),
    status,
  });
}

function gadgetV2(group: string) {
  return defineResource({
    group,
    version: 'v2',
    kind: 'Gadget',
    plural: 'gadgets',
    scope: 'Namespaced',
    description: 'A test gadget (v2: the owner as a reference, the size with its unit).',
    spec: Type.Object({
      owner: Type.Object({ name: Type.String() }),
      size: Type.Object({ value: Type.Integer({ minimum: 1 }), unit: Type.Literal('cm') }),
      color: Type.Optional(Type.String()),
    }),
    status,
  });
}

/** The largest gadget the size webhook admits. */
export const MAX_SIZE_CM = 100;

/** The Gadget API of a fresh group `webhooktest-<random>.bosun.dev`, with its webhooks. */
export function gadgetApi(group = `webhooktest-${randomBytes(4).toString('hex')}.bosun.dev`) {
  const v1 = gadgetV1(group);
  const v2 = gadgetV2(group);
  type V1 = ObjectOf<typeof v1>;
  type V2 = ObjectOf<typeof v2>;
  const versions = defineVersions(v1, {
    spokes: [
      spoke(v1, {
        resource: v2,
        toHub: ({ spec, ...o }: V2): V1 =>
          spec
            ? {
                ...o,
                spec: { owner: spec.owner.name, sizeCm: spec.size.value, ...(spec.color !== undefined ? { color: spec.color } : {}) },
              }
            : o,
        fromHub: ({ spec, ...o }: V1): V2 =>
          spec
            ? {
                ...o,
                spec: {
                  owner: { name: spec.owner },
                  size: { value: spec.sizeCm, unit: 'cm' },
                  ...(spec.color !== undefined ? { color: spec.color } : {}),
                },
              }
            : o,
      }),
    ],
  });
  const size = validatingWebhook({
    name: `size.gadgets.${group}`,
    resource: v1,
    failurePolicy: 'Fail',
    failurePolicyReason: 'a test: an oversized gadget must never be stored',
    validate: ({ object }) =>
      object?.spec && object.spec.sizeCm > MAX_SIZE_CM
        ? deny(`spec.sizeCm is ${object.spec.sizeCm}, more than ${MAX_SIZE_CM}. Fix: set spec.sizeCm to at most ${MAX_SIZE_CM}`, {
            field: 'spec.sizeCm',
          })
        : allow(),
  });
  const defaults = mutatingWebhook({
    name: `defaults.gadgets.${group}`,
    resource: v1,
    failurePolicy: 'Fail',
    failurePolicyReason: 'a test: every stored gadget has a color and a size class',
    mutate: (o) =>
      o.spec
        ? {
            ...o,
            metadata: {
              ...o.metadata,
              labels: { ...o.metadata.labels, 'gadgets.bosun.dev/size-class': o.spec.sizeCm > 50 ? 'large' : 'small' },
            },
            spec: { ...o.spec, color: o.spec.color ?? 'grey' },
          }
        : o,
  });
  /** Refuses owner 'mallory' (so a test sees it in effect before it stops the server), after `delayMs`. */
  const ownerCheck = (name: string, failurePolicy: FailurePolicy, timeoutSeconds?: number, delayMs = 0) =>
    validatingWebhook({
      name: `${name}.gadgets.${group}`,
      resource: v1,
      failurePolicy,
      failurePolicyReason: `a test of failurePolicy ${failurePolicy}`,
      timeoutSeconds,
      validate: async ({ object }) => {
        // A slow dependency that ignores the signal: the server's own deadline must answer for it.
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        return object?.spec?.owner === 'mallory' ? deny('spec.owner mallory may not own gadgets. Fix: choose another owner') : allow();
      },
    });
  return { group, v1, v2, versions, size, defaults, ownerCheck };
}

/** A Gadget v1 manifest (YAML) for kubectl. */
export function gadgetYaml(r: CustomResource, ns: string, name: string, spec: { owner: string; sizeCm: number; color?: string }): string {
  const color = spec.color === undefined ? '' : `\n  color: ${spec.color}`;
  return `apiVersion: ${r.group}/${r.version}\nkind: Gadget\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n  owner: ${spec.owner}\n  sizeCm: ${spec.sizeCm}${color}\n`;
}
