// What an Application's Ready condition says for each state of its Deployment: the reason must match the message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusFromDeployment, type DeploymentObject } from './children.js';
import type { Application } from './resource.js';

const app: Application = {
  apiVersion: 'shclub.github.io/v1',
  kind: 'Application',
  metadata: { name: 'web', namespace: 'ns' },
  spec: { image: 'nginx', replicas: 2, port: 80 },
};
const deployment = (generation: number, observedGeneration: number, ready: number): DeploymentObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'ns', generation },
  status: { observedGeneration, replicas: 2, readyReplicas: ready, updatedReplicas: 2 },
});

void test('every replica ready on the observed generation: Ready=True ReplicasReady', () => {
  assert.deepEqual(statusFromDeployment(app, deployment(3, 3, 2)).ready, {
    status: 'True',
    reason: 'ReplicasReady',
    message: '2/2 replicas of Deployment web are ready',
  });
});

void test('replicas missing: Ready=False ReplicasNotReady', () => {
  assert.equal(statusFromDeployment(app, deployment(3, 3, 1)).ready.reason, 'ReplicasNotReady');
});

void test("a generation the Deployment's controller has not observed yet (someone edited it): the reason says so, not ReplicasNotReady", () => {
  const r = statusFromDeployment(app, deployment(4, 3, 2)).ready;
  assert.equal(r.status, 'False');
  assert.equal(r.reason, 'DeploymentNotObserved');
  assert.equal(
    r.message,
    "Deployment web's controller has not observed its generation 4 yet (last observed 3); 2/2 replicas were ready then",
  );
});
