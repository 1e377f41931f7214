// The public face of src/crd: declare a resource once in TypeScript, get types, validation and the CRD.
export * from './resource.js';
export * from './conditions.js';
export * from './structural.js';
export * from './generate.js';
// The package root's CustomResourceDefinition is the built-in kind (handle and API object); the manifest
// `toCustomResourceDefinition` returns stays reachable under this name.
export type { CustomResourceDefinition as CustomResourceDefinitionManifest } from './generate.js';
