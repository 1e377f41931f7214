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
 * the conversion webhook at `clientConfig` (the manager serves it at `versions.path`).
 */
export function toMultiVersionCrd(versions: ApiVersions, opts: { clientConfig: WebhookClientConfig }): CustomResourceDefinition {
  const { hub } = versions;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: versions.crdName },
    spec: {
      group: hub.group,
      names: namesOf(hub),
      scope: hub.scope,
      versions: versions.versions.map((v) => crdVersion(v, v === versions.storage)),
      conversion: { strategy: 'Webhook', webhook: { clientConfig: structuredClone(opts.clientConfig), conversionReviewVersions: ['v1'] } },
    },
  };
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

/** The multi-version CRD as YAML text, with the generated-file header naming the hub and the storage version. */
export function renderMultiVersionCrdYaml(versions: ApiVersions, opts: { clientConfig: WebhookClientConfig }): string {
  const { hub, storage } = versions;
  const header = [
    `# Generated by \`bosun generate\` from the TypeScript definitions of ${hub.kind} (defineVersions): ` +
      `served at ${versions.versions.map((v) => v.version).join(', ')}, hub ${hub.version}, stored at ${storage.version}.`,
    '# Do not edit by hand: change the resource definitions or the versions and run `bosun generate` again.',
  ].join('\n');
  return `${header}\n${stringify(toMultiVersionCrd(versions, opts), { lineWidth: 0 })}`;
}

/** The file a resource's CRD is written to: `<outDir>/<plural>.<group>.yaml`. */
export function crdFilePath(resource: CustomResource, outDir: string): string {
  return join(outDir, `${crdName(resource)}.yaml`);
}

/** How generateCrds writes CRDs served at several versions. */
export interface CrdGenerationOptions {
  /** The CRDs served at several versions (the project module's `versions`): one multi-version file each. */
  versions?: readonly ApiVersions[];
  /** Where the API server reaches the conversion webhook of a versioned CRD (for `bosun generate`, the in-cluster Service). */
  conversionClientConfig?: (versions: ApiVersions) => WebhookClientConfig;
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
    if (!opts.conversionClientConfig)
      throw new WebhookDefinitionError(
        `CRD ${name}: served at several versions, but no conversionClientConfig says where the API server reaches its conversion webhook. ` +
          'Fix: pass conversionClientConfig (bosun generate passes the in-cluster webhook Service)',
      );
    files.push({ file: `${name}.yaml`, text: renderMultiVersionCrdYaml(v, { clientConfig: opts.conversionClientConfig(v) }) });
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
