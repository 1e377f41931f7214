// Resource handles carry their object type. Most of this file is checked by `tsc` (the type-check step of
// `make test`), not by running it: if inference from a handle breaks, the assertions below stop compiling.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Type } from '@sinclair/typebox';
import {
  ConfigMap,
  CustomResourceDefinition,
  Deployment,
  Event,
  Lease,
  Namespace,
  Pod,
  Secret,
  Service,
  apiVersionOf,
  defineResource,
  handlers,
  controller,
  type CacheReader,
  type KubeObject,
  type ObjectOf,
  type ResourceType,
} from 'bosun';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { toCustomResourceDefinition, type CustomResourceDefinitionManifest } from 'bosun/crd';

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
/** Compiles only when the argument's type is exactly `Expected`: `expectType<Pod[]>()(pods)`. */
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => {};
}
/** Compiles only when `T` is `true`, for assertions on types with no value at hand. */
function assertType<_T extends true>(): void {}

// Never called: its body only has to compile, with every inferred type exactly as asserted.
function inference(cache: CacheReader, ns: string): void {
  const msg = cache.get(MessageResource, ns, 'hello');
  expectType<Message | undefined>()(msg);
  expectType<Message[]>()(cache.list(MessageResource, { namespace: ns }));
  if (!msg) return;
  // Spec and status fields come from the TypeBox schemas.
  assertType<Equal<NonNullable<typeof msg.spec>['text'], string>>();
  assertType<Equal<NonNullable<typeof msg.status>['phase'], string | undefined>>();

  expectType<Pod[]>()(cache.ownedBy(Pod, msg));
  expectType<Deployment | undefined>()(cache.get(Deployment, ns, 'd'));
  assertType<Equal<NonNullable<Pod['status']>['phase'], 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' | undefined>>();

  // Each built-in kind's value is a handle of its own type.
  assertType<Equal<ObjectOf<typeof Pod>, Pod>>();
  assertType<Equal<ObjectOf<typeof Service>, Service>>();
  assertType<Equal<ObjectOf<typeof Deployment>, Deployment>>();
  assertType<Equal<ObjectOf<typeof ConfigMap>, ConfigMap>>();
  assertType<Equal<ObjectOf<typeof Secret>, Secret>>();
  assertType<Equal<ObjectOf<typeof Event>, Event>>();
  assertType<Equal<ObjectOf<typeof Lease>, Lease>>();
  assertType<Equal<ObjectOf<typeof Namespace>, Namespace>>();
  assertType<Equal<ObjectOf<typeof CustomResourceDefinition>, CustomResourceDefinition>>();
  assertType<Equal<ObjectOf<typeof MessageResource>, Message>>();
  // An untyped handle describes plain KubeObjects.
  const anything: ResourceType = { group: 'example.com', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true };
  expectType<KubeObject[]>()(cache.list(anything));

  // A handle of one kind cannot be read as another.
  // @ts-expect-error a Pod handle does not give Messages
  cache.get<Message>(Pod, ns, 'p');
  // @ts-expect-error a Message is not a Pod
  const notPod: Pod | undefined = cache.get(MessageResource, ns, 'm');
  void notPod;
  // @ts-expect-error a Pod spec needs its containers
  const noContainers: Pod = { metadata: { name: 'p' }, spec: {} };
  void noContainers;
  // Fields bosun does not name are still readable and writable through the index signatures.
  const pod: Pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox', tty: true }], hostNetwork: false } };
  void pod;

  // defineResource's handle is typed by its schemas, also when declared inline.
  const Widget = defineResource({
    group: 'example.com',
    version: 'v1',
    kind: 'Widget',
    plural: 'widgets',
    scope: 'Namespaced',
    description: 'A widget.',
    spec: Type.Object({ size: Type.Integer() }),
    status: Type.Object({ ready: Type.Optional(Type.Boolean()) }),
  });
  expectType<KubeObject<{ size: number }, { ready?: boolean }> | undefined>()(cache.get(Widget, ns, 'w'));

  // kopf-style handlers infer the object from the handle, and the child from onOwned's handle.
  handlers('message-handlers', MessageResource)
    .onCreate(({ obj }) => expectType<Message>()(obj))
    .onOwned(Pod, ({ child }) => expectType<Pod | undefined>()(child));
  controller('message').for(MessageResource).owns(Pod);
}
void inference;

void test('built-in handles name the API their object type describes', () => {
  const handles = [Pod, Service, Deployment, ConfigMap, Secret, Event, Lease, Namespace, CustomResourceDefinition];
  assert.deepEqual(
    handles.map((h) => `${apiVersionOf(h)} ${h.kind} ${h.plural} ${h.namespaced ? 'namespaced' : 'cluster'}`),
    [
      'v1 Pod pods namespaced',
      'v1 Service services namespaced',
      'apps/v1 Deployment deployments namespaced',
      'v1 ConfigMap configmaps namespaced',
      'v1 Secret secrets namespaced',
      'v1 Event events namespaced',
      'coordination.k8s.io/v1 Lease leases namespaced',
      'v1 Namespace namespaces cluster',
      'apiextensions.k8s.io/v1 CustomResourceDefinition customresourcedefinitions cluster',
    ],
  );
});

void test('the package root CustomResourceDefinition is the built-in kind; the generated manifest keeps its own name', () => {
  const manifest: CustomResourceDefinitionManifest = toCustomResourceDefinition(MessageResource);
  // The manifest is what the API server's CRD objects are made from, so it reads as one.
  const asObject: CustomResourceDefinition = { ...manifest, metadata: { ...manifest.metadata } };
  assert.equal(asObject.kind, CustomResourceDefinition.kind);
  assert.equal(asObject.apiVersion, apiVersionOf(CustomResourceDefinition));
  assert.equal(asObject.spec?.names.plural, MessageResource.plural);
});
