// The floors: no operator at all, the bench itself making each Message's necessary writes as fast
// as the API server takes them, so the contenders' figures have a lower bound beside them.
import { Pod, type KubeClient, type KubeObject } from 'bosun';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { desiredPod } from '../../operators/message/pod.js';
import type { ContenderName } from './contenders.js';
import { follow, NS } from './messages.js';
import { pool } from './pool.js';

/** The floors' names among the contenders. */
export type FloorName = Extract<ContenderName, 'floor' | 'floor-running'>;

/** Whether `name` is a floor, whose writes the bench makes instead of starting an operator. */
export function isFloor(name: ContenderName): name is FloorName {
  return name === 'floor' || name === 'floor-running';
}

/** Makes floor `name`'s writes for each Message of `created`, as each arrives, at most 64 at a time. */
export function floorWrites(name: FloorName, client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  return name === 'floor' ? directWrites(client, created) : runningWrites(client, created);
}

/**
 * Creates `msgs` (32 at a time) and makes floor `name`'s writes for each as its create answers: the
 * floors react to the responses directly, with no watch, no cache and no latency.
 */
export async function floorConverge(name: FloorName, client: KubeClient, msgs: Message[]): Promise<void> {
  const queue: Message[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  const creates = pool(msgs, 32, async (m) => {
    queue.push(await client.create<Message>(MessageResource, m));
    wake?.();
  }).then(() => {
    finished = true;
    wake?.();
  });
  const feed = async function* (): AsyncIterable<Message> {
    for (;;) {
      const m = queue.shift();
      if (m) yield m;
      else if (finished) return;
      else await new Promise<void>((r) => (wake = r));
    }
  };
  await Promise.all([creates, floorWrites(name, client, feed())]);
}

/** The floor: the necessary writes (create the Pod, write the status) for each Message as fast as the API server takes them. */
async function directWrites(client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  await pool(created, 64, async (msg) => {
    await client.create(Pod, ownedPod(msg));
    await client.patch(MessageResource, NS, msg.metadata.name!, readyStatus(msg), 'merge', { subresource: 'status' });
  });
}

/** The Pod the floors create for a Message: the Message operator's own, owned by the Message. */
function ownedPod(msg: Message): KubeObject {
  const pod = desiredPod(msg);
  const owner = {
    apiVersion: 'myorg.dev/v1',
    kind: 'Message',
    name: msg.metadata.name!,
    uid: msg.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
  return { ...pod, apiVersion: 'v1', kind: 'Pod', metadata: { ...pod.metadata, ownerReferences: [owner] } } as KubeObject;
}

function readyStatus(msg: Message) {
  const lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    status: {
      phase: 'Running',
      podName: `${msg.metadata.name}-pod`,
      observedGeneration: 1,
      conditions: [{ type: 'Ready', status: 'True', reason: 'PodRunning', message: '', lastTransitionTime }],
    },
  };
}

/**
 * The floor with the cluster's share: the same writes, but each status only once its Pod is Running,
 * seen through one watch of Pods (no cache, no reconcile loop). No operator whose Ready follows the
 * Pod can beat this: it waits for the scheduler's binding and kwok's status like they do.
 */
async function runningWrites(client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  const waiting = new Map<string, Message>();
  const running = new Set<string>();
  const writes: Promise<void>[] = [];
  let createsDone = false;
  let done!: () => void;
  const allWritten = new Promise<void>((r) => (done = r));
  const ac = new AbortController();
  const writeStatus = (msg: Message) => {
    writes.push(
      client.patch(MessageResource, NS, msg.metadata.name!, readyStatus(msg), 'merge', { subresource: 'status' }).then(() => undefined),
    );
    if (createsDone && waiting.size === 0) done();
  };
  const settle = (podName: string) => {
    const msg = waiting.get(podName);
    if (!msg) return void running.add(podName);
    waiting.delete(podName);
    writeStatus(msg);
  };
  const watching = follow<KubeObject<unknown, { phase?: string }>>(client, Pod, ac.signal, (p) => {
    if (p.status?.phase === 'Running') settle(p.metadata.name!);
    return false;
  });
  await pool(created, 64, async (msg) => {
    const pod = ownedPod(msg);
    await client.create(Pod, pod);
    waiting.set(pod.metadata.name!, msg);
    if (running.has(pod.metadata.name!)) settle(pod.metadata.name!);
  });
  createsDone = true;
  if (waiting.size === 0) done();
  await allWritten;
  await Promise.all(writes);
  ac.abort();
  await watching;
}
