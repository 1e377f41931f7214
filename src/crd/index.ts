// The public face of src/crd: declare a resource once in TypeScript, get types, validation and the CRD.
export * from './resource.js';
export * from './conditions.js';
export * from './structural.js';
export * from './generate.js';
