import { Type, type Static } from '@sinclair/typebox';
import { ConditionsSchema, defineResource, type ObjectOf } from 'bosun';

/** Schema of Message.spec: the text a Pod prints. */
export const MessageSpecSchema = Type.Object(
  {
    text: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'The text the operator prints from a Pod it creates for this Message (1 to 4096 characters).',
    }),
  },
  { description: 'What the Message should say.' },
);

/** Schema of Message.status: where the Pod is and how far it got. */
export const MessageStatusSchema = Type.Object(
  {
    phase: Type.Optional(Type.String({ description: 'Phase of the Pod printing the text, e.g. Pending, Running, Succeeded.' })),
    podName: Type.Optional(Type.String({ description: 'Name of the Pod created to print the text.' })),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The .metadata.generation this status was computed from.' }),
    ),
    conditions: Type.Optional(ConditionsSchema),
  },
  { description: 'Observed state of the Message, written by the operator.' },
);

/** The Message custom resource (messages.myorg.dev/v1): a text printed by a Pod. */
export const MessageResource = defineResource({
  group: 'myorg.dev',
  version: 'v1',
  kind: 'Message',
  plural: 'messages',
  shortNames: ['msg'],
  scope: 'Namespaced',
  description: 'Message asks the operator to print a text from a Pod and reports the Pod it used.',
  spec: MessageSpecSchema,
  status: MessageStatusSchema,
  printerColumns: [
    { name: 'Text', jsonPath: '.spec.text' },
    { name: 'Phase', jsonPath: '.status.phase' },
    { name: 'Pod', jsonPath: '.status.podName' },
  ],
});

/** Message.spec as a TypeScript type. */
export type MessageSpec = Static<typeof MessageSpecSchema>;
/** Message.status as a TypeScript type. */
export type MessageStatus = Static<typeof MessageStatusSchema>;
/** A Message object, as `ctx.cache.get(MessageResource, ns, name)` returns it. */
export type Message = ObjectOf<typeof MessageResource>;
