/**
 * bosun/crd: CustomResourceDefinition manifests from resources declared with `defineResource` — the
 * structural schema, printer columns, the YAML files `bosun generate` writes and checks for drift.
 */
export {
  toCustomResourceDefinition,
  renderCrdYaml,
  generateCrds,
  checkCrds,
  crdName,
  crdFilePath,
  openApiSchemaOf,
  PrinterColumnError,
} from './tooling/generate/crd.js';
export type { CustomResourceDefinition as CustomResourceDefinitionManifest, CrdPrinterColumn } from './tooling/generate/crd.js';
export { toStructuralSchema, StructuralSchemaError, type JSONSchemaProps, type ValidationRule } from './resource/structural.js';
export type { CustomResource } from './resource/resource.js';
