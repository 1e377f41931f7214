// The public entry points export exactly these values (types are checked by `tsc` where they are used). A name
// added to or dropped from an entry point fails here until the list is changed on purpose, so the API surface
// never grows by accident, and no value has two homes.
import assert from 'node:assert/strict';
import test from 'node:test';

const ENTRY_POINTS: Record<string, { load: () => Promise<Record<string, unknown>>; values: string }> = {
  bosun: {
    load: () => import('bosun'),
    values: `ApiError CHILD_INVALID CacheSyncTimeoutError ChildInvalidError ConditionSchema ConditionsSchema ConfigMap
      CustomResourceDefinition DeadConnectionError Deployment Event FinalizerTargetError InvalidLogLevelError KubeClient
      KubeConfigError LeaderElectionLostError Lease Manager Namespace NoOwnerError OwnerScopeError PermanentError Pod
      ReconcileContext RequestTimeoutError ResourceDefinitionError Secret Service ShutdownTimeoutError SpecValidationError
      StatusPreconditionError TemporaryError TransportError apiVersionOf assertValidSpec cel childNamespace conditionsSchema
      controller controllerRef createLogger custom defineResource enqueueMapped enqueueObject enqueueOwner findCondition
      generationChanged handlers hasFinalizer hasLabels intOrString isAlreadyExists isConditionTrue isConflict
      isControlledBy isGone isNotFound isTooManyRequests keyOf objectLogger requestFor requestFromKey setCondition statusOf
      withFinalizer BosunError ERROR_CODES codeOf ObjectNameRequiredError ClientClosedError Http2RefusedError
      TransportConfigError ControllerDeclarationError OwnerMetadataError DuplicateControllerError InvalidLogFormatError
      validatingWebhook mutatingWebhook defineVersions spoke allow deny WebhookDefinitionError`,
  },
  'bosun/runtime': {
    load: () => import('bosun/runtime'),
    values: `Backoff CONTROLLER_INDEX CacheSet CacheStartedError Controller DEFAULT_WORKERS EventRecorder
      EventRecorderConfigError FakeClock INITIAL_EVENTS_END IndexConflictError IndexerError Informer ItemExponentialRateLimiter LABEL_INDEX
      LeaderElectionConfigError LeaderElector MaxOfRateLimiter Metrics NAMESPACE_INDEX NotCachedError OWNER_INDEX Store
      TokenBucketRateLimiter UnknownIndexError WatchStreamError WorkQueue cacheReader clientListWatcher decide
      defaultControllerRateLimiter labelSelectorOf parseRetryAfter realClock runWatcher silentLogger stripForCache
      startWebhookServer WebhookCertificateError WebhookListenError WebhookRequestError WebhookTimeoutError OwnWrites
      WebhookCertRotator WebhookCertsConfigError WebhookCertsSecretError CaInjectionError`,
  },
  'bosun/crd': {
    load: () => import('bosun/crd'),
    values: `PrinterColumnError StructuralSchemaError checkCrds crdFilePath crdName generateCrds openApiSchemaOf
      renderCrdYaml toCustomResourceDefinition toStructuralSchema toMultiVersionCrd toWebhookConfigurations
      renderWebhookConfigurations excludeNamespaces`,
  },
  'bosun/envtest': {
    load: () => import('bosun/envtest'),
    values: `ClusterMetricsError FAILING_IMAGE FaultProxyError TestEnvError apiserverMetrics eventually runControllers runKubectl
      serveWebhooks startCluster startFaultProxy startTestEnv stopCluster withFileLock writeProxyKubeconfig writeTokenKubeconfig`,
  },
};

for (const [entry, { load, values }] of Object.entries(ENTRY_POINTS)) {
  test(`${entry} exports exactly its listed values`, async () => {
    const actual = Object.keys(await load()).sort();
    const expected = values.split(/\s+/).filter(Boolean).sort();
    assert.deepEqual(actual, expected);
  });
}

test('no value is exported by two entry points', async () => {
  const home = new Map<string, string>();
  const twice: string[] = [];
  for (const [entry, { load }] of Object.entries(ENTRY_POINTS)) {
    for (const name of Object.keys(await load())) {
      const first = home.get(name);
      if (first) twice.push(`${name} (${first}, ${entry})`);
      else home.set(name, entry);
    }
  }
  assert.deepEqual(twice, []);
});
