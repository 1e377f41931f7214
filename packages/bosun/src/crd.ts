/**
 * bosun/crd: CustomResourceDefinition manifests from resources declared with `defineResource` — the
 * structural schema, printer columns, the YAML files `bosun generate` writes and checks for drift — and the
 * multi-version CRDs and webhook configurations of a project's versions and admission webhooks.
 */
export {
  toCustomResourceDefinition,
  toMultiVersionCrd,
  renderCrdYaml,
  generateCrds,
  checkCrds,
  crdName,
  crdFilePath,
  openApiSchemaOf,
  PrinterColumnError,
} from './tooling/generate/crd.js';
export type {
  CustomResourceDefinition as CustomResourceDefinitionManifest,
  CrdPrinterColumn,
  CrdVersion,
  CrdWebhookConversion,
} from './tooling/generate/crd.js';
export { toWebhookConfigurations, renderWebhookConfigurations, excludeNamespaces } from './tooling/generate/webhook.js';
export type {
  WebhookClientConfig,
  WebhookConfigurationOptions,
  WebhookEntry,
  MutatingWebhookEntry,
  WebhookRule,
  ValidatingWebhookConfiguration,
  MutatingWebhookConfiguration,
} from './tooling/generate/webhook.js';
export { toStructuralSchema, StructuralSchemaError, type JSONSchemaProps, type ValidationRule } from './resource/structural.js';
export type { CustomResource } from './resource/resource.js';
