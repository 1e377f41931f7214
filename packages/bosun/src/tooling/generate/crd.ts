import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { CustomResource, PrinterColumn } from '../../resource/resource.js';
import { toStructuralSchema, type JSONSchemaProps } from '../../resource/structural.js';
import { bosunError } from '../../errors.js';
import { WebhookDefinitionError, type ApiVersions } from '../../webhook/declare.js';
import type { WebhookClientConfig } from './webhook.js';

/** A printer column as it appears in the CRD, with its type resolved. */
export type CrdPrinterColumn = PrinterColumn & { type: NonNullable<PrinterColumn['type']> };

/** One entry of a CRD's `spec.versions` (a type alias, so it stays assignable to the built-in kind's index-signature type). */
export type CrdVersion = {
  name: string;
  served: boolean;
  storage: boolean;
  subresources: { status: Record<string, never> };
  additionalPrinterColumns: CrdPrinterColumn[];
  schema: { openAPIV3Schema: JSONSchemaProps };
};

/** A CRD's `spec.conversion` when its versions are converted by a webhook. */
export type CrdWebhookConversion = {
  strategy: 'Webhook';
  webhook: { clientConfig: WebhookClientConfig; conversionReviewVersions: ['v1'] };
};

/** An `apiextensions.k8s.io/v1` CustomResourceDefinition object. */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    scope: 'Namespaced' | 'Cluster';
    versions: CrdVersion[];
    conversion?: CrdWebhookConversion;
  };
}

/** A printer column whose jsonPath does not lead to a field of the schema. */
export class PrinterColumnError extends bosunError('BOSUN_PRINTER_COLUMN') {
  override name = 'PrinterColumnError';
}

/** The CRD object name, `<plural>.<group>`, which is also the generated file's base name. */
export function crdName(resource: CustomResource): string {
  return `${resource.plural}.${resource.group}`;
}

/** The whole-object OpenAPI schema of a resource: apiVersion, kind, metadata, spec, status. */
export function openApiSchemaOf(resource: CustomResource): JSONSchemaProps {
  const spec = toStructuralSchema(resource.specSchema, `${resource.kind}.spec`);
  const status = toStructuralSchema(resource.statusSchema, `${resource.kind}.status`);
  const root: JSONSchemaProps = {
    description: resource.description,
    type: 'object',
    properties: {
      apiVersion: {
        description: 'APIVersion defines the versioned schema of this representation of an object.',
        type: 'string',
      },
      kind: {
        description: 'Kind is a string value representing the REST resource this object represents.',
        type: 'string',
      },
      metadata: { type: 'object' },
      spec,
      status,
    },
  };
  // Without this an object with no spec at all would pass, skipping every required spec field.
  if (spec.required !== undefined && spec.required.length > 0) root.required = ['spec'];
  if (resource.validations.length > 0) root['x-kubernetes-validations'] = [...resource.validations];
  return root;
}

/** The full `apiextensions.k8s.io/v1` CRD for a resource: one served+stored version with the status subresource. */
export function toCustomResourceDefinition(resource: CustomResource): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(resource) },
    spec: { group: resource.group, names: namesOf(resource), scope: resource.scope, versions: [crdVersion(resource, true)] },
  };
}

/**
 * The CRD of a resource served at several versions: every version served with its own schema, printer columns
 * and status subresource, `storage` only on `versions.storage`, and the API server converting between them through
 * the conversion webhook at `clientConfig` (the manager serves it at `versions.path`). It is `toVersionedBaseCrd`
 * with `versionsPatch` applied.
 */
export function toMultiVersionCrd(versions: ApiVersions, opts: { clientConfig: WebhookClientConfig }): CustomResourceDefinition {
  const crd = toVersionedBaseCrd(versions);
  for (const v of crd.spec.versions) v.served = true;
  crd.spec.conversion = conversionOf(opts.clientConfig);
  return crd;
}

/**
 * The CRD of a versioned resource as config/crd holds it: every version's schema, only the storage version
 * served, no conversion. It needs no webhook server, so it can be installed alone (`make install`, tests, a
 * cluster without the webhook component); the other versions are served once `versionsPatch` turns them and
 * the conversion webhook on (config/webhook does, with the webhook server that converts).
 */
export function toVersionedBaseCrd(versions: ApiVersions): CustomResourceDefinition {
  const { hub } = versions;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: versions.crdName },
    spec: {
      group: hub.group,
      names: namesOf(hub),
      scope: hub.scope,
      versions: ordered(versions).map((v) => ({ ...crdVersion(v, v === versions.storage), served: v === versions.storage })),
    },
  };
}

/** One operation of a JSON patch (RFC 6902), as kustomize and `kubectl patch --type=json` take them. */
export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'test';
  path: string;
  value: unknown;
}

/**
 * The JSON patch that turns `toVersionedBaseCrd` into `toMultiVersionCrd`: every version served, conversion by
 * the webhook at `clientConfig`. config/webhook applies it to the CRD; `kubectl patch crd <name> --type=json
 * --patch-file <file>` applies it to an installed one.
 */
export function versionsPatch(versions: ApiVersions, clientConfig: WebhookClientConfig): JsonPatchOperation[] {
  return [
    // A JSON patch addresses versions by index: each is tested for its name first, so a CRD whose versions lie
    // in another order refuses the patch rather than serving the wrong one.
    ...ordered(versions).flatMap((v, i): JsonPatchOperation[] =>
      v === versions.storage
        ? []
        : [
            { op: 'test', path: `/spec/versions/${i}/name`, value: v.version },
            { op: 'replace', path: `/spec/versions/${i}/served`, value: true },
          ],
    ),
    { op: 'add', path: '/spec/conversion', value: conversionOf(clientConfig) },
  ];
}

/**
 * The versions in CRD order: the storage version first, then the others as declared. A CRD that served the
 * storage version alone and gains the others by an apply (server-side or client-side, both merge versions by
 * name) keeps its existing entry first and appends the new ones, so the generated order is the order a cluster
 * upgraded in place holds, and `versionsPatch`'s indexes fit both.
 */
function ordered(versions: ApiVersions): CustomResource[] {
  return [versions.storage, ...versions.versions.filter((v) => v !== versions.storage)];
}

function conversionOf(clientConfig: WebhookClientConfig): CrdWebhookConversion {
  return { strategy: 'Webhook', webhook: { clientConfig: structuredClone(clientConfig), conversionReviewVersions: ['v1'] } };
}

function namesOf(resource: CustomResource): CustomResourceDefinition['spec']['names'] {
  const names: CustomResourceDefinition['spec']['names'] = {
    kind: resource.kind,
    listKind: `${resource.kind}List`,
    plural: resource.plural,
    singular: resource.singular,
  };
  if (resource.shortNames.length > 0) names.shortNames = [...resource.shortNames];
  if (resource.categories.length > 0) names.categories = [...resource.categories];
  return names;
}

function crdVersion(resource: CustomResource, storage: boolean): CrdVersion {
  const schema = openApiSchemaOf(resource);
  return {
    name: resource.version,
    served: true,
    storage,
    subresources: { status: {} },
    additionalPrinterColumns: printerColumns(resource, schema),
    schema: { openAPIV3Schema: schema },
  };
}

/** The CRD as YAML text, with a header saying it is generated and must not be edited by hand. */
export function renderCrdYaml(resource: CustomResource): string {
  const header = [
    `# Generated by \`bosun generate\` from the TypeScript definition of ${resource.kind} (defineResource).`,
    '# Do not edit by hand: change the resource definition and run `bosun generate` again.',
  ].join('\n');
  // lineWidth 0 keeps long descriptions and patterns on one line, so diffs stay readable and stable.
  return `${header}\n${stringify(toCustomResourceDefinition(resource), { lineWidth: 0 })}`;
}

/** The versioned CRD config/crd holds (`toVersionedBaseCrd`) as YAML text, its header naming the hub, the storage version and what serves the rest. */
export function renderVersionedBaseCrdYaml(versions: ApiVersions): string {
  const { hub, storage } = versions;
  const header = [
    `# Generated by \`bosun generate\` from the TypeScript definitions of ${hub.kind} (defineVersions): ` +
      `versions ${versions.versions.map((v) => v.version).join(', ')}, hub ${hub.version}, stored at ${storage.version}.`,
    `# Only ${storage.version} is served here, so this CRD works without the webhook server; config/webhook serves the`,
    '# other versions and turns on the conversion webhook (its versions patch).',
    '# Do not edit by hand: change the resource definitions or the versions and run `bosun generate` again.',
  ].join('\n');
  return `${header}\n${stringify(toVersionedBaseCrd(versions), { lineWidth: 0 })}`;
}

/** The file a resource's CRD is written to: `<outDir>/<plural>.<group>.yaml`. */
export function crdFilePath(resource: CustomResource, outDir: string): string {
  return join(outDir, `${crdName(resource)}.yaml`);
}

/** How generateCrds writes CRDs served at several versions. */
export interface CrdGenerationOptions {
  /** The CRDs served at several versions (the project module's `versions`): one file each, as `toVersionedBaseCrd`. */
  versions?: readonly ApiVersions[];
}

/** One generated CRD file: its base name and text. */
export interface CrdFile {
  file: string;
  text: string;
}

/**
 * The CRD files for resources and versions, one per CRD name in the order resources list them. Several resources
 * of one CRD name need a `versions` entry saying which is stored and how they convert; without one, which of them
 * would land in the file is a guess, so it is refused.
 */
export function crdFiles(resources: readonly CustomResource[], opts: CrdGenerationOptions = {}): CrdFile[] {
  const byName = new Map<string, CustomResource[]>();
  for (const r of resources) {
    const list = byName.get(crdName(r)) ?? [];
    if (!list.includes(r)) list.push(r);
    byName.set(crdName(r), list);
  }
  const versioned = new Map<string, ApiVersions>();
  for (const v of opts.versions ?? []) {
    if (versioned.has(v.crdName))
      throw new WebhookDefinitionError(
        `versions of ${v.crdName}: declared twice. Fix: one defineVersions per CRD, listing every served version once`,
      );
    versioned.set(v.crdName, v);
    if (!byName.has(v.crdName)) byName.set(v.crdName, []);
  }
  const files: CrdFile[] = [];
  for (const [name, list] of byName) {
    const v = versioned.get(name);
    if (v === undefined) {
      if (list.length > 1)
        throw new WebhookDefinitionError(
          `CRD ${name}: resources has ${list[0]?.kind} at ${list.map((r) => r.version).join(' and ')}, and no versions entry says which ` +
            'version is stored and how they convert (one file is written per CRD). Fix: export const versions = ' +
            `[defineVersions(<hub>, { spokes: [spoke(<hub>, { resource: <other>, toHub, fromHub })], storage: <stored> })] from the project module`,
        );
      files.push({ file: `${name}.yaml`, text: renderCrdYaml(list[0]!) });
      continue;
    }
    const served = new Set(v.versions.map((r) => r.version));
    const stray = list.find((r) => !served.has(r.version));
    if (stray)
      throw new WebhookDefinitionError(
        `CRD ${name}: resources has ${stray.kind} ${stray.version}, which its versions do not serve (${[...served].join(', ')}). ` +
          `Fix: add a spoke for ${stray.version} to its defineVersions, or drop it from resources`,
      );
    files.push({ file: `${name}.yaml`, text: renderVersionedBaseCrdYaml(v) });
  }
  return files;
}

/** Writes one CRD YAML file per CRD name into outDir; returns the paths written. */
export async function generateCrds(
  resources: readonly CustomResource[],
  outDir: string,
  opts: CrdGenerationOptions = {},
): Promise<string[]> {
  const files = crdFiles(resources, opts);
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const { file, text } of files) {
    await writeFile(join(outDir, file), text);
    written.push(join(outDir, file));
  }
  return written;
}

/** The CRD files in outDir that are missing or differ from what generateCrds would write (empty when in sync). */
export async function checkCrds(resources: readonly CustomResource[], outDir: string, opts: CrdGenerationOptions = {}): Promise<string[]> {
  const stale: string[] = [];
  for (const { file, text } of crdFiles(resources, opts)) {
    const current = await readFile(join(outDir, file), 'utf8').catch(() => undefined);
    if (current !== text) stale.push(join(outDir, file));
  }
  return stale;
}

// Resolving each column against the schema catches a typo in jsonPath at generation; the API server
// would accept it and print <none> forever.
function printerColumns(resource: CustomResource, schema: JSONSchemaProps): CrdPrinterColumn[] {
  const columns = resource.printerColumns.map((column): CrdPrinterColumn => {
    const field = fieldAt(schema, column.jsonPath);
    if (field === undefined) {
      throw new PrinterColumnError(
        `${resource.kind} printer column ${column.name}: jsonPath ${column.jsonPath} names no field of the schema. ` +
          'Fix: use a path like .spec.<field> or .status.<field> that exists in the spec/status schema',
      );
    }
    const type = column.type ?? columnType(field);
    if (type === undefined) {
      throw new PrinterColumnError(
        `${resource.kind} printer column ${column.name}: ${column.jsonPath} is ${field.type ?? 'untyped'}, not a scalar. ` +
          'Fix: point at a string, integer, number or boolean field, or set type explicitly',
      );
    }
    const out: CrdPrinterColumn = { name: column.name, type, jsonPath: column.jsonPath };
    const description = column.description ?? field.description;
    if (description !== undefined) out.description = description;
    if (column.format !== undefined) out.format = column.format;
    if (column.priority !== undefined) out.priority = column.priority;
    return out;
  });
  if (!columns.some((c) => c.name === 'Age')) {
    columns.push({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
  }
  return columns;
}

function fieldAt(schema: JSONSchemaProps, jsonPath: string): JSONSchemaProps | undefined {
  if (jsonPath === '.metadata.creationTimestamp') return { type: 'string', format: 'date-time' };
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(jsonPath)) return undefined;
  let node: JSONSchemaProps | undefined = schema;
  for (const part of jsonPath.slice(1).split('.')) {
    node = node?.properties?.[part];
  }
  return node;
}

function columnType(field: JSONSchemaProps): CrdPrinterColumn['type'] | undefined {
  if (field.format === 'date-time') return 'date';
  if (field['x-kubernetes-int-or-string']) return 'string';
  switch (field.type) {
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
      return field.type;
    default:
      return undefined;
  }
}
