// The floors: no operator at all, the bench itself making each Message's necessary writes as fast
// as the API server takes them, so the contenders' figures have a lower bound beside them.
import { Pod, type KubeClient, type KubeObject } from 'bosun';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { desiredPod } from '../../operators/message/pod.js';
import type { ContenderName } from './contenders.js';
import { NS } from './messages.js';
import { clientListWatcher, runWatcher } from 'bosun/runtime';
import { limiter, pool } from './pool.js';

/** The floors' creates (and floor-running's status writes) in flight at most: 64, or $BENCH_FLOOR_IN_FLIGHT. */
const FLOOR_IN_FLIGHT = Number(process.env.BENCH_FLOOR_IN_FLIGHT) || 64;

/** The floors' names among the contenders. */
export type FloorName = Extract<ContenderName, 'floor' | 'floor-running'>;

/** Whether `name` is a floor, whose writes the bench makes instead of starting an operator. */
export function isFloor(name: ContenderName): name is FloorName {
  return name === 'floor' || name === 'floor-running';
}

/**
 * Makes floor `name`'s writes for each Message of `created`, as each arrives, at most 64 at a time;
 * floor-running needs its Pod watch (`pods`), opened before the clock starts.
 */
export function floorWrites(name: FloorName, client: KubeClient, created: AsyncIterable<Message>, pods?: RunningPods): Promise<void> {
  if (name === 'floor') return directWrites(client, created);
  if (!pods) throw new Error('floor-running needs its Pod watch (RunningPods), opened before the run');
  return runningWrites(client, created, pods);
}

/**
 * Creates `msgs` (32 at a time, through `client`, as the bench creates them for every contender) and
 * makes floor `name`'s writes for each as its create answers, through `writer`, a client of its own as
 * an operator has its own connection: the floors react to the responses directly, with no watch, no
 * cache and no latency.
 */
export async function floorConverge(
  name: FloorName,
  client: KubeClient,
  writer: KubeClient,
  msgs: Message[],
  pods?: RunningPods,
): Promise<void> {
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
  await Promise.all([creates, floorWrites(name, writer, feed(), pods)]);
}

/** The floor: the necessary writes (create the Pod, write the status) for each Message as fast as the API server takes them. */
async function directWrites(client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  await pool(created, FLOOR_IN_FLIGHT, async (msg) => {
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
 * The floor-running contender's one watch of Pods, opened before the clock starts and kept for the
 * warm-up and the run, as an operator's watches are synced before its warm-up: opening it inside
 * the measured window (a list, then a watch) charged the floor a start-up no contender pays.
 */
export class RunningPods {
  private readonly running = new Set<string>();
  private readonly waiters = new Map<string, () => void>();
  private readonly ac = new AbortController();
  private readonly watching: Promise<void>;
  private markSynced!: () => void;
  /** Resolves once the first list of Pods has been seen. */
  readonly synced = new Promise<void>((r) => (this.markSynced = r));

  constructor(client: KubeClient) {
    const see = (p: KubeObject<unknown, { phase?: string }>) => {
      if (p.status?.phase !== 'Running') return;
      const name = p.metadata.name!;
      this.running.add(name);
      this.waiters.get(name)?.();
      this.waiters.delete(name);
    };
    this.watching = runWatcher<KubeObject<unknown, { phase?: string }>>(
      clientListWatcher(client, Pod, { namespace: NS }),
      (ev) => {
        if (ev.type === 'applied') see(ev.object);
        else if (ev.type === 'page') {
          for (const o of ev.objects) see(o);
          if (ev.last) this.markSynced();
        }
      },
      this.ac.signal,
    );
  }

  /** Resolves when the Pod `name` has been seen Running. */
  whenRunning(name: string): Promise<void> {
    if (this.running.has(name)) return Promise.resolve();
    return new Promise((r) => this.waiters.set(name, r));
  }

  /** Stops the watch. */
  async stop(): Promise<void> {
    this.ac.abort();
    await this.watching;
  }
}

/**
 * The floor with the cluster's share: the same writes, but each status only once its Pod is Running,
 * seen through one watch of Pods (no cache, no reconcile loop). No operator whose Ready follows the
 * Pod can beat this: it waits for the scheduler's binding and kwok's status like they do.
 */
async function runningWrites(client: KubeClient, created: AsyncIterable<Message>, pods: RunningPods): Promise<void> {
  const writes: Promise<void>[] = [];
  // At most 64 status writes in flight too, as for the creates (an operator is bounded by its workers):
  // unbounded, a burst of Pods turning Running sent hundreds at once beside the scheduler's and kwok's writes.
  const write = limiter(FLOOR_IN_FLIGHT);
  await pool(created, FLOOR_IN_FLIGHT, async (msg) => {
    const pod = ownedPod(msg);
    await client.create(Pod, pod);
    writes.push(
      pods
        .whenRunning(pod.metadata.name!)
        .then(() =>
          write(() => client.patch(MessageResource, NS, msg.metadata.name!, readyStatus(msg), 'merge', { subresource: 'status' })),
        )
        .then(() => undefined),
    );
  });
  await Promise.all(writes);
}
