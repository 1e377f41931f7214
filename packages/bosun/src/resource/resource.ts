import { Type, type Static, type TSchema, type SchemaOptions } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { KubeObject, ResourceType } from '../client/types.js';
import { bosunError } from '../errors.js';

export type { ObjectOf } from '../client/types.js';
import { toStructuralSchema, type ValidationRule } from './structural.js';

/** A column `kubectl get` prints for the resource. */
export interface PrinterColumn {
  /** Column header, e.g. 'Phase'. */
  name: string;
  /** Simple JSONPath into the object, e.g. '.status.phase'. */
  jsonPath: string;
  /** Column type; inferred from the schema at jsonPath when left out. */
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  /** Shown by `kubectl explain`-style tools; taken from the field's description when left out. */
  description?: string;
  /** 0 shows the column always, higher numbers only with `kubectl get -o wide`. */
  priority?: number;
  /** OpenAPI format hint, e.g. 'int64'. */
  format?: string;
}

/** What a user writes to declare a custom resource; see defineResource. */
export interface ResourceDefinition<SpecSchema extends TSchema, StatusSchema extends TSchema> {
  /** API group, a DNS name with at least one dot, e.g. 'myorg.dev'. */
  group: string;
  /** API version, e.g. 'v1' or 'v1beta1'. */
  version: string;
  /** Kind in PascalCase, e.g. 'Message'. */
  kind: string;
  /** Lower-case plural used in URLs and the CRD name, e.g. 'messages'. */
  plural: string;
  /** Lower-case singular; defaults to the lower-cased kind. */
  singular?: string;
  /** Short names for kubectl, e.g. ['msg']. */
  shortNames?: string[];
  /** Groups kubectl can list together, e.g. ['all']. */
  categories?: string[];
  /** Whether objects live in a namespace or at cluster level. */
  scope: 'Namespaced' | 'Cluster';
  /** Schema of `.spec`; its descriptions become `kubectl explain` text. */
  spec: SpecSchema;
  /** Schema of `.status`, written through the status subresource. */
  status: StatusSchema;
  /** Columns for `kubectl get`; an Age column is appended unless one is named Age. */
  printerColumns?: PrinterColumn[];
  /** CEL rules on the whole object (`self.metadata`, `self.spec`); rules on one field go on its schema. */
  validations?: ValidationRule[];
  /** What the resource is for; shown by `kubectl explain <kind>`. */
  description: string;
}

/** One problem found by validateSpec, at a dotted path such as 'spec.items[0].name'. */
export interface FieldError {
  /** Path of the offending field from the object root, e.g. 'spec.text'. */
  path: string;
  /** What is wrong, in TypeBox's words. */
  message: string;
  /** The offending value, if any. */
  value: unknown;
}

/** The object type of a custom resource with these schemas: `KubeObject<Static<SpecSchema>, Static<StatusSchema>>`. */
export type CustomObject<SpecSchema extends TSchema, StatusSchema extends TSchema> = KubeObject<Static<SpecSchema>, Static<StatusSchema>>;

/**
 * A custom resource type: a ResourceType of the objects its schemas describe (so `cache.get(MessageResource, ...)`
 * is typed), carrying the schemas for validation and CRD generation.
 */
export interface CustomResource<SpecSchema extends TSchema = TSchema, StatusSchema extends TSchema = TSchema> extends ResourceType<
  CustomObject<SpecSchema, StatusSchema>
> {
  /** Lower-case singular name. */
  readonly singular: string;
  /** kubectl short names. */
  readonly shortNames: readonly string[];
  /** kubectl categories. */
  readonly categories: readonly string[];
  /** Namespaced or Cluster, as the CRD spells it. */
  readonly scope: 'Namespaced' | 'Cluster';
  /** The TypeBox schema of `.spec`. */
  readonly specSchema: SpecSchema;
  /** The TypeBox schema of `.status`. */
  readonly statusSchema: StatusSchema;
  /** Printer columns as declared (Age is added at generation). */
  readonly printerColumns: readonly PrinterColumn[];
  /** Object-level CEL rules. */
  readonly validations: readonly ValidationRule[];
  /** Description of the whole resource. */
  readonly description: string;
  /** Checks `obj.spec` against the spec schema locally; CEL rules are left to the API server. */
  validateSpec(obj: { spec?: unknown }): FieldError[];
}

/** The static spec type of a resource: `SpecOf<typeof Message>`. */
export type SpecOf<R> = R extends CustomResource<infer S, TSchema> ? Static<S> : never;
/** The static status type of a resource: `StatusOf<typeof Message>`. */
export type StatusOf<R> = R extends CustomResource<TSchema, infer S> ? Static<S> : never;

/** A resource definition Kubernetes would refuse (bad group, plural, kind, ...); names the field and the fix. */
export class ResourceDefinitionError extends bosunError('BOSUN_RESOURCE_DEFINITION') {
  override name = 'ResourceDefinitionError';
}

/** A spec that does not match its schema; carries every FieldError. */
export class SpecValidationError extends bosunError('BOSUN_SPEC_INVALID') {
  override name = 'SpecValidationError';
  constructor(
    /** Kind of the object. */
    readonly kind: string,
    /** The problems found, each with its field path. */
    readonly errors: FieldError[],
  ) {
    super(`${kind} is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;

/**
 * Declares a custom resource once, in TypeScript: the result is a ResourceType for the client and
 * watchers, the source of the CRD manifest, and the origin of the spec/status static types.
 */
export function defineResource<SpecSchema extends TSchema, StatusSchema extends TSchema>(
  def: ResourceDefinition<SpecSchema, StatusSchema>,
): CustomResource<SpecSchema, StatusSchema> {
  checkNames(def);
  // Converting now makes a non-structural schema fail where the resource is declared, not at apply time.
  toStructuralSchema(def.spec, `${def.kind}.spec`);
  toStructuralSchema(def.status, `${def.kind}.status`);
  const specSchema = def.spec;
  const resource: CustomResource<SpecSchema, StatusSchema> = {
    group: def.group,
    version: def.version,
    kind: def.kind,
    plural: def.plural,
    namespaced: def.scope === 'Namespaced',
    singular: def.singular ?? def.kind.toLowerCase(),
    shortNames: Object.freeze([...(def.shortNames ?? [])]),
    categories: Object.freeze([...(def.categories ?? [])]),
    scope: def.scope,
    specSchema,
    statusSchema: def.status,
    printerColumns: Object.freeze([...(def.printerColumns ?? [])]),
    validations: Object.freeze([...(def.validations ?? [])]),
    description: def.description,
    validateSpec(obj) {
      return validateAt(specSchema, obj.spec, 'spec');
    },
  };
  return Object.freeze(resource);
}

/** Throws SpecValidationError unless `obj.spec` matches the resource's spec schema. */
export function assertValidSpec(resource: CustomResource, obj: { spec?: unknown }): void {
  const errors = resource.validateSpec(obj);
  if (errors.length > 0) throw new SpecValidationError(resource.kind, errors);
}

/** A CEL rule for `x-kubernetes-validations`, e.g. `cel('self.from != self.to', 'from and to must differ')`. */
export function cel(rule: string, message: string, extra: Omit<ValidationRule, 'rule' | 'message'> = {}): ValidationRule {
  return { rule, message, ...extra };
}

/** An integer-or-string field (like a Service targetPort), emitted as `x-kubernetes-int-or-string`. */
export function intOrString(options: SchemaOptions = {}) {
  return Type.Union([Type.Integer(), Type.String()], options);
}

function checkNames(def: ResourceDefinition<TSchema, TSchema>): void {
  const fail = (field: string, problem: string, fix: string): never => {
    throw new ResourceDefinitionError(`${def.kind || '(no kind)'} resource: ${field} ${problem}. Fix: ${fix}`);
  };
  if (!KIND.test(def.kind)) fail('kind', `"${def.kind}" is not PascalCase`, 'use a name like "FlightTicket"');
  if (!DNS_SUBDOMAIN.test(def.group)) {
    fail('group', `"${def.group}" is not a DNS name with a dot`, 'use a domain you own, e.g. "myorg.dev"');
  }
  if (!VERSION.test(def.version)) fail('version', `"${def.version}" is not a Kubernetes version`, 'use v1, v1beta1 or v1alpha1');
  if (!DNS_LABEL.test(def.plural)) fail('plural', `"${def.plural}" is not a lower-case DNS label`, 'use e.g. "flighttickets"');
  if (def.singular !== undefined && !DNS_LABEL.test(def.singular)) {
    fail('singular', `"${def.singular}" is not a lower-case DNS label`, 'use the lower-cased kind');
  }
  for (const name of def.shortNames ?? []) {
    if (!DNS_LABEL.test(name)) fail('shortNames', `"${name}" is not a lower-case DNS label`, 'use e.g. "ft"');
  }
  if (def.description.trim() === '') fail('description', 'is empty', 'say what the resource is for; kubectl explain shows it');
}

// TypeBox reports JSON Pointers ('/items/0/name'); Kubernetes users read 'spec.items[0].name'.
function validateAt(schema: TSchema, value: unknown, root: string): FieldError[] {
  if (value === undefined) return [{ path: root, message: 'Required', value }];
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = root + pointerToPath(error.path);
    // TypeBox reports a missing field twice (required, then wrong type); the first says it best.
    if (seen.has(path)) continue;
    seen.add(path);
    errors.push({ path, message: error.message, value: error.value });
  }
  return errors;
}

function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`))
    .join('');
}
