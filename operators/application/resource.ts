import { Type, type Static } from '@sinclair/typebox';
import { ConditionsSchema, defineResource, type ObjectOf } from 'bosun';

/** Schema of Application.spec: what to run and how many copies. */
export const ApplicationSpecSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, description: 'Container image to run, e.g. nginx:1.27.' }),
    replicas: Type.Integer({ format: 'int32', minimum: 0, description: 'Number of Pods to run; 0 scales the Application down.' }),
    port: Type.Integer({
      format: 'int32',
      minimum: 1,
      maximum: 65535,
      description: 'Container port the Application listens on and its Service exposes (1 to 65535).',
    }),
  },
  { description: 'Desired state of the Application.' },
);

/** Schema of Application.status: how many replicas exist and are ready. */
export const ApplicationStatusSchema = Type.Object(
  {
    replicas: Type.Optional(Type.Integer({ format: 'int32', description: 'Number of Pods of the Application that exist.' })),
    readyReplicas: Type.Optional(Type.Integer({ format: 'int32', description: 'Number of Pods of the Application that are ready.' })),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The .metadata.generation this status was computed from.' }),
    ),
    conditions: Type.Optional(ConditionsSchema),
  },
  { description: 'Observed state of the Application, written by the operator.' },
);

/** The Application custom resource (applications.shclub.github.io/v1): an image run as a Deployment and Service. */
export const ApplicationResource = defineResource({
  group: 'shclub.github.io',
  version: 'v1',
  kind: 'Application',
  plural: 'applications',
  shortNames: ['app'],
  scope: 'Namespaced',
  description: 'Application runs a container image with a number of replicas and exposes its port.',
  spec: ApplicationSpecSchema,
  status: ApplicationStatusSchema,
  printerColumns: [
    { name: 'Image', jsonPath: '.spec.image' },
    { name: 'Replicas', jsonPath: '.spec.replicas' },
    { name: 'Ready', jsonPath: '.status.readyReplicas' },
  ],
});

/** Application.spec as a TypeScript type. */
export type ApplicationSpec = Static<typeof ApplicationSpecSchema>;
/** Application.status as a TypeScript type. */
export type ApplicationStatus = Static<typeof ApplicationStatusSchema>;
/** An Application object, as `ctx.cache.get(ApplicationResource, ns, name)` returns it. */
export type Application = ObjectOf<typeof ApplicationResource>;
