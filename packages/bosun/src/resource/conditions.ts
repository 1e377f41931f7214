import { Type, type Static } from '@sinclair/typebox';

// Limits and patterns are those of metav1.Condition, so a status written by bosun is also valid for
// tools (kubectl wait, Argo CD health checks) that expect the upstream shape.

/** Schema of one `metav1.Condition`. */
export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      description: 'Type of condition in CamelCase or in foo.example.com/CamelCase, e.g. Ready.',
      minLength: 1,
      maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')], {
      description: 'Status of the condition: True, False or Unknown.',
    }),
    observedGeneration: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        description: 'The .metadata.generation the condition was set from; older than the object means the condition is stale.',
      }),
    ),
    lastTransitionTime: Type.String({
      format: 'date-time',
      description: 'Last time the condition changed from one status to another (RFC 3339).',
    }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: 'Programmatic identifier of the reason for the last transition, in CamelCase.',
    }),
    message: Type.String({
      maxLength: 32768,
      description: 'Human-readable details about the transition; may be empty.',
    }),
  },
  { description: 'Condition contains details for one aspect of the current state of this object.' },
);

/** One `metav1.Condition` as a TypeScript type. */
export type Condition = Static<typeof ConditionSchema>;

/**
 * Schema of a `status.conditions` list: a map keyed by `type`, so server-side apply merges
 * conditions written by different field managers instead of replacing the whole list.
 */
export function conditionsSchema(description = 'Current state of the object as a list of conditions, one per type.') {
  return Type.Array(ConditionSchema, {
    description,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
}

/** The default `status.conditions` schema, for statuses that need no custom description. */
export const ConditionsSchema = conditionsSchema();
