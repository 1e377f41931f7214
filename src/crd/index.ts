/**
 * bosun/crd: CustomResourceDefinition manifests from resources declared with `defineResource` — the
 * structural schema, printer columns, the YAML files `bosun generate` writes and checks for drift.
 */
export { toCustomResourceDefinition, renderCrdYaml, generateCrds, checkCrds, crdName, crdFilePath, openApiSchemaOf, PrinterColumnError } from './generate.js';
export type { CustomResourceDefinition as CustomResourceDefinitionManifest, CrdPrinterColumn } from './generate.js';
export { toStructuralSchema, StructuralSchemaError, type JSONSchemaProps, type ValidationRule } from './structural.js';
export type { CustomResource } from './resource.js';
