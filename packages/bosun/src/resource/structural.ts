// Turns TypeBox's JSON Schema into the subset Kubernetes accepts as a *structural* CRD schema.
// The API server rejects a non-structural schema only when the CRD is applied; doing the same checks
// here moves that failure to `bosun generate` and lets the message name the TypeScript field.

import { bosunError } from '../errors.js';

/** One CEL rule as carried in `x-kubernetes-validations`. */
export interface ValidationRule {
  /** The CEL expression; `self` is the value of the field the rule sits on. */
  rule: string;
  /** The message the API server returns when the rule is false. */
  message?: string;
  /** A CEL expression producing the message, for messages that quote the value. */
  messageExpression?: string;
  /** A JSONPath (relative to the rule's field) that the error is reported at, e.g. '.to'. */
  fieldPath?: string;
  /** The machine-readable reason of the error: FieldValueInvalid (default), FieldValueForbidden, ... */
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** Transition rules (using `oldSelf`) can be marked optional so they also run on create. */
  optionalOldSelf?: boolean;
}

/** A Kubernetes `JSONSchemaProps` as it appears in `openAPIV3Schema` of a CRD version. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  title?: string;
  default?: unknown;
  example?: unknown;
  enum?: unknown[];
  nullable?: boolean;
  maximum?: number;
  exclusiveMaximum?: boolean;
  minimum?: number;
  exclusiveMinimum?: boolean;
  multipleOf?: number;
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  maxItems?: number;
  minItems?: number;
  maxProperties?: number;
  minProperties?: number;
  required?: string[];
  items?: JSONSchemaProps;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  anyOf?: JSONSchemaProps[];
  allOf?: JSONSchemaProps[];
  oneOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: ValidationRule[];
}

/** A schema shape the API server would refuse; names the field (e.g. `Message.spec.text`) and the fix. */
export class StructuralSchemaError extends bosunError('BOSUN_STRUCTURAL_SCHEMA') {
  override name = 'StructuralSchemaError';
  constructor(
    /** Field path starting with the kind, e.g. 'Message.spec.labels'. */
    readonly path: string,
    /** What is wrong with the schema at that path. */
    readonly problem: string,
    /** How to change the TypeBox definition so Kubernetes accepts it. */
    readonly fix: string,
  ) {
    super(`${path}: ${problem}. Fix: ${fix}`);
  }
}

type Schema = Record<string, unknown>;

const JSON_TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

// Keywords copied unchanged; everything else is either translated below or refused, because the API
// server rejects unknown fields in a schema and silently dropping them would lose validation.
const PLAIN_KEYWORDS = [
  'format',
  'description',
  'title',
  'default',
  'example',
  'nullable',
  'maximum',
  'minimum',
  'multipleOf',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'maxProperties',
  'minProperties',
] as const;

const EXTENSIONS = new Set([
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);

// TypeBox writes these for its own bookkeeping; they mean nothing to Kubernetes.
const IGNORED = new Set(['$id', '$schema', '$comment', 'examples', 'additionalItems']);

// The key pattern TypeBox emits for Type.Record(Type.String(), V): every key, i.e. a plain map.
const ANY_KEY_PATTERNS = new Set(['^(.*)$', '^.*$']);

const HANDLED = new Set<string>([
  ...PLAIN_KEYWORDS,
  ...EXTENSIONS,
  ...IGNORED,
  'type',
  'const',
  'enum',
  'exclusiveMaximum',
  'exclusiveMinimum',
  'required',
  'properties',
  'additionalProperties',
  'patternProperties',
  'items',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  'uniqueItems',
  '$ref',
  'definitions',
  '$defs',
]);

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Converts a TypeBox schema into a Kubernetes structural schema, or throws StructuralSchemaError.
 * `at` is the field path the schema sits at, starting with the kind (e.g. 'Message.spec').
 */
export function toStructuralSchema(schema: unknown, at: string): JSONSchemaProps {
  if (!isSchema(schema)) {
    throw new StructuralSchemaError(at, 'is not a schema object', 'pass a TypeBox schema such as Type.Object({...})');
  }
  refuseUnsupported(schema, at);
  if (schema.anyOf !== undefined) return convertUnion(schema, at);

  const out: JSONSchemaProps = {};
  const type = schema.type;
  if (type !== undefined) {
    if (typeof type !== 'string') {
      throw new StructuralSchemaError(
        at,
        `has type ${JSON.stringify(type)}, a list of types`,
        'give the field exactly one type; for "int or string" use intOrString()',
      );
    }
    if (type === 'null') {
      throw new StructuralSchemaError(
        at,
        'has type: null, which Kubernetes does not allow',
        'drop Type.Null(); make the field Type.Optional(...) or mark it { nullable: true }',
      );
    }
    if (!JSON_TYPES.has(type)) {
      throw new StructuralSchemaError(
        at,
        `has type "${type}", which is not a JSON type`,
        'use Type.String({ format: "date-time" }) for dates, Type.String({ format: "byte" }) for bytes, Type.Integer or Type.Number for numbers',
      );
    }
    out.type = type as JSONSchemaProps['type'];
  }
  for (const key of PLAIN_KEYWORDS) {
    if (schema[key] !== undefined) (out as Record<string, unknown>)[key] = schema[key];
  }
  convertExclusive(schema, out, 'exclusiveMaximum', 'maximum');
  convertExclusive(schema, out, 'exclusiveMinimum', 'minimum');
  boundInt32(out);
  if (schema.const !== undefined) out.enum = [schema.const];
  if (schema.enum !== undefined) out.enum = schema.enum as unknown[];
  copyExtensions(schema, out, at);

  if (out.type === undefined && !out['x-kubernetes-int-or-string'] && !out['x-kubernetes-preserve-unknown-fields']) {
    throw new StructuralSchemaError(
      at,
      'has no type (Type.Any / Type.Unknown or a bare Type.Unsafe)',
      'give it a type, or for free-form data use Type.Unsafe({ type: "object", "x-kubernetes-preserve-unknown-fields": true })',
    );
  }

  if (schema.items !== undefined) out.items = toStructuralSchema(schema.items, `${at}[*]`);
  if (out.type === 'array' && out.items === undefined) {
    throw new StructuralSchemaError(at, 'is an array without an items schema', 'use Type.Array(itemSchema)');
  }
  convertObject(schema, out, at);
  checkListType(out, at);
  return canonical(out);
}

// A fixed key order makes the generated YAML independent of how options were written in TypeScript,
// so reordering options never shows up as drift.
const ORDER = [
  'description',
  'type',
  'format',
  'title',
  'default',
  'example',
  'nullable',
  'enum',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'anyOf',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'items',
  'properties',
  'required',
  'additionalProperties',
  'x-kubernetes-validations',
];

function canonical(schema: JSONSchemaProps): JSONSchemaProps {
  const rank = (key: string): number => {
    const i = ORDER.indexOf(key);
    return i === -1 ? ORDER.length : i;
  };
  const entries = Object.entries(schema).sort(([a], [b]) => rank(a) - rank(b));
  return Object.fromEntries(entries) as JSONSchemaProps;
}

function refuseUnsupported(schema: Schema, at: string): void {
  if (schema.$ref !== undefined) {
    throw new StructuralSchemaError(
      at,
      `uses $ref ${JSON.stringify(schema.$ref)}; CRD schemas cannot reference other schemas`,
      'inline the referenced schema (use the TypeBox value itself, not Type.Ref or Type.Recursive)',
    );
  }
  if (schema.definitions !== undefined || schema.$defs !== undefined) {
    throw new StructuralSchemaError(
      at,
      'has definitions/$defs; CRD schemas cannot hold shared definitions',
      'inline the definitions instead of using Type.Module',
    );
  }
  if (Array.isArray(schema.items)) {
    throw new StructuralSchemaError(
      at,
      'is a tuple (items is a list of schemas); Kubernetes arrays have one item schema',
      'use Type.Array(itemSchema), or an object with named fields instead of Type.Tuple',
    );
  }
  if (schema.uniqueItems === true) {
    throw new StructuralSchemaError(
      at,
      'has uniqueItems: true, which Kubernetes forbids',
      'drop uniqueItems and add { "x-kubernetes-list-type": "set" } to the array',
    );
  }
  if (
    schema.allOf !== undefined &&
    schema.type === 'object' &&
    Array.isArray(schema.allOf) &&
    schema.allOf.some((s) => isSchema(s) && s.properties !== undefined)
  ) {
    throw new StructuralSchemaError(
      at,
      'is an intersection (allOf of objects); structural schemas need all properties in one place',
      'use Type.Composite([...]) instead of Type.Intersect([...])',
    );
  }
  for (const key of ['allOf', 'oneOf', 'not']) {
    if (schema[key] !== undefined) {
      throw new StructuralSchemaError(
        at,
        `uses ${key}, which bosun does not translate`,
        'express the constraint as a CEL rule in "x-kubernetes-validations"',
      );
    }
  }
  const unknown = Object.keys(schema).filter((k) => !HANDLED.has(k));
  if (unknown.length > 0) {
    throw new StructuralSchemaError(
      at,
      `has keyword(s) ${unknown.join(', ')} that Kubernetes schemas do not know`,
      'remove them; cross-field or custom checks go in "x-kubernetes-validations" (CEL)',
    );
  }
}

// Kubernetes' OpenAPI v3.0 dialect has boolean exclusive bounds; TypeBox uses draft-2019 numeric ones.
function convertExclusive(
  schema: Schema,
  out: JSONSchemaProps,
  key: 'exclusiveMaximum' | 'exclusiveMinimum',
  bound: 'maximum' | 'minimum',
): void {
  const value = schema[key];
  if (typeof value === 'number') {
    out[bound] = value;
    out[key] = true;
  } else if (value === true) {
    out[key] = true;
  }
}

// The API server accepts 3000000000 in an int32 field, and the operator's write of a child field
// (Deployment replicas, a port) then fails; the bounds make the API server refuse it on the field.
function boundInt32(out: JSONSchemaProps): void {
  if (out.type !== 'integer' || out.format !== 'int32') return;
  out.minimum ??= -2147483648;
  out.maximum ??= 2147483647;
}

function copyExtensions(schema: Schema, out: JSONSchemaProps, at: string): void {
  for (const [key, value] of Object.entries(schema)) {
    if (!key.startsWith('x-')) continue;
    if (!EXTENSIONS.has(key)) {
      throw new StructuralSchemaError(
        at,
        `has extension ${key}, which the API server does not know`,
        `use one of ${[...EXTENSIONS].join(', ')}`,
      );
    }
    if (key === 'x-kubernetes-validations') checkRules(value, at);
    (out as Record<string, unknown>)[key] = value;
  }
}

// The API server checks these when the CRD is applied; catching them here names the TypeScript field.
function checkListType(out: JSONSchemaProps, at: string): void {
  if (out['x-kubernetes-preserve-unknown-fields'] === false) {
    throw new StructuralSchemaError(
      at,
      'has x-kubernetes-preserve-unknown-fields: false; it must be true or absent',
      'remove it: pruning unknown fields is the default',
    );
  }
  const listType = out['x-kubernetes-list-type'];
  const keys = out['x-kubernetes-list-map-keys'];
  if (listType !== undefined && out.type !== 'array') {
    throw new StructuralSchemaError(
      at,
      `has x-kubernetes-list-type but is ${out.type ?? 'untyped'}, not an array`,
      'put x-kubernetes-list-type on the Type.Array(...) options',
    );
  }
  if (keys !== undefined && listType !== 'map') {
    throw new StructuralSchemaError(
      at,
      'has x-kubernetes-list-map-keys without x-kubernetes-list-type: map',
      'add "x-kubernetes-list-type": "map"',
    );
  }
  if (listType !== 'map') return;
  const items = out.items;
  if (items?.type !== 'object' || items.properties === undefined) {
    throw new StructuralSchemaError(
      at,
      'is a list-type map whose items are not objects',
      'use Type.Array(Type.Object({...})) or x-kubernetes-list-type "atomic"/"set"',
    );
  }
  if (keys === undefined || keys.length === 0) {
    throw new StructuralSchemaError(
      at,
      'is a list-type map without x-kubernetes-list-map-keys',
      'add "x-kubernetes-list-map-keys": ["name"] naming the key field(s)',
    );
  }
  for (const key of keys) {
    const field = items.properties[key];
    if (field === undefined) {
      throw new StructuralSchemaError(at, `lists map key "${key}", which is not a field of its items`, 'name an existing item field');
    }
    if (!(items.required ?? []).includes(key) && field.default === undefined) {
      throw new StructuralSchemaError(
        `${at}[*].${key}`,
        'is a list map key but is optional and has no default',
        'make the key field required (drop Type.Optional) or give it a default',
      );
    }
    if (field.type !== 'string' && field.type !== 'integer' && field.type !== 'boolean' && field.type !== 'number') {
      throw new StructuralSchemaError(`${at}[*].${key}`, 'is a list map key but is not a scalar', 'use a string or integer key');
    }
  }
}

function checkRules(value: unknown, at: string): void {
  const fix = 'write [{ rule: "self.a != self.b", message: "..." }] (see cel() in src/crd/resource.ts)';
  if (!Array.isArray(value)) throw new StructuralSchemaError(at, 'x-kubernetes-validations is not a list', fix);
  value.forEach((rule: unknown, i) => {
    if (!isSchema(rule) || typeof rule.rule !== 'string' || rule.rule.trim() === '') {
      throw new StructuralSchemaError(at, `x-kubernetes-validations[${i}] has no rule`, fix);
    }
  });
}

function convertObject(schema: Schema, out: JSONSchemaProps, at: string): void {
  const properties = schema.properties;
  const patterns = schema.patternProperties;
  let additional = schema.additionalProperties;
  if (patterns !== undefined) {
    const entries = isSchema(patterns) ? Object.entries(patterns) : [];
    const only = entries[0];
    if (entries.length !== 1 || only === undefined || !ANY_KEY_PATTERNS.has(only[0])) {
      throw new StructuralSchemaError(
        at,
        `uses patternProperties (${entries.map(([p]) => p).join(', ')}), which Kubernetes forbids`,
        'use Type.Record(Type.String(), valueSchema) and check the keys with a CEL rule, e.g. self.all(k, k.matches("^[a-z]+$"))',
      );
    }
    if (additional !== undefined && additional !== false) {
      throw new StructuralSchemaError(
        at,
        'has both patternProperties and additionalProperties',
        'keep one value schema: Type.Record(Type.String(), valueSchema)',
      );
    }
    // A record with string keys is exactly a map, which Kubernetes spells additionalProperties.
    additional = only[1];
  }
  if (properties !== undefined) {
    if (!isSchema(properties)) throw new StructuralSchemaError(at, 'properties is not an object', 'use Type.Object({...})');
    if (patterns !== undefined) {
      throw new StructuralSchemaError(
        at,
        'has both properties and patternProperties',
        'split the fixed fields and the map into two fields: Type.Object({ known..., extra: Type.Record(Type.String(), V) })',
      );
    }
    if (isSchema(additional)) {
      throw new StructuralSchemaError(
        at,
        'has additionalProperties beside properties, which Kubernetes forbids',
        'move the free-form part into its own field: Type.Object({ known..., extra: Type.Record(Type.String(), V) })',
      );
    }
    // Unknown fields are pruned by the API server, which is what additionalProperties: false means.
    if (additional === true) out['x-kubernetes-preserve-unknown-fields'] = true;
    out.properties = {};
    for (const [name, child] of Object.entries(properties)) {
      out.properties[name] = toStructuralSchema(child, `${at}.${name}`);
    }
    const required = schema.required;
    if (Array.isArray(required) && required.length > 0) out.required = [...(required as string[])];
  } else if (isSchema(additional)) {
    out.additionalProperties = toStructuralSchema(additional, `${at}.*`);
  } else if (additional === true) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  if (
    out.type === 'object' &&
    out.properties === undefined &&
    out.additionalProperties === undefined &&
    !out['x-kubernetes-preserve-unknown-fields'] &&
    !out['x-kubernetes-embedded-resource']
  ) {
    // An empty object schema would prune every field the user writes, which is never what was meant.
    throw new StructuralSchemaError(
      at,
      'is an object with no properties, so the API server would drop all its fields',
      'declare its fields with Type.Object({...}), use Type.Record(Type.String(), V) for a map, or add "x-kubernetes-preserve-unknown-fields": true',
    );
  }
}

// TypeBox encodes literal unions, enums and nullable fields as anyOf; Kubernetes wants enum, nullable and
// x-kubernetes-int-or-string instead, and forbids types inside anyOf.
function convertUnion(schema: Schema, at: string): JSONSchemaProps {
  const branches = schema.anyOf;
  if (!Array.isArray(branches) || !branches.every(isSchema)) {
    throw new StructuralSchemaError(at, 'anyOf is not a list of schemas', 'use Type.Union([...])');
  }
  const { anyOf: _anyOf, ...options } = schema;
  const nonNull = branches.filter((b) => b.type !== 'null');
  const nullable = nonNull.length < branches.length;
  const types = [...new Set(nonNull.map((b) => b.type))];
  const base: JSONSchemaProps = {};
  for (const key of PLAIN_KEYWORDS) if (options[key] !== undefined) (base as Record<string, unknown>)[key] = options[key];
  copyExtensions(options, base, at);
  if (nullable) base.nullable = true;

  if (nonNull.length === 0) {
    throw new StructuralSchemaError(at, 'is a union of only null', 'drop the field or give it a type');
  }
  if (nonNull.every((b) => b.const !== undefined) && types.length === 1) {
    return canonical({ type: types[0] as JSONSchemaProps['type'], ...base, enum: nonNull.map((b) => b.const) });
  }
  if (nonNull.length === 1 && nonNull[0] !== undefined) {
    return canonical({ ...toStructuralSchema(nonNull[0], at), ...base });
  }
  if (
    nonNull.length === 2 &&
    types.length === 2 &&
    types.includes('integer') &&
    types.includes('string') &&
    nonNull.every((b) => b.const === undefined)
  ) {
    return canonical({ ...base, anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true });
  }
  if (types.length > 1) {
    throw new StructuralSchemaError(
      at,
      `is a union of different types (${types.map(String).join(' | ')})`,
      'give the field one type; for integer | string use intOrString(); otherwise use separate optional fields and a CEL rule',
    );
  }
  throw new StructuralSchemaError(
    at,
    `is a union of ${nonNull.length} non-literal ${String(types[0])} schemas`,
    'use one schema with optional fields (objects) or a Type.Union of Type.Literal values (enums), plus a CEL rule for the rest',
  );
}
