// The benchmark's work: Messages in one namespace, and watching them (and their Pods) from the API
// server itself, the same way for every contender.
import type { KubeClient, KubeObject, ResourceType } from 'bosun';
import { clientListWatcher, runWatcher } from 'bosun/runtime';
import { MessageResource, type Message } from '../../operators/message/resource.js';

/** The namespace every run works in and every contender watches. */
export const NS = 'bench';

/** The `i`-th benchmark Message, named `m-<i>`. */
export function message(i: number): Message {
  return {
    apiVersion: 'myorg.dev/v1',
    kind: 'Message',
    metadata: { name: `m-${i}`, namespace: NS },
    spec: { text: `benchmark message ${i}` },
  };
}

/** Whether a contender has finished a Message: Ready, for the generation it has now. */
export function isReady(m: Message): boolean {
  return (
    m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
    m.status?.observedGeneration === m.metadata.generation
  );
}

/**
 * Feeds every object of `type` in the bench namespace to `see`, as listed and then as it changes, through
 * bosun's own watcher (re-lists on 410, reconnects after errors); returns when `see` returns true or
 * `signal` fires. Reads the API server, never a contender's cache.
 */
export async function follow<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  signal: AbortSignal,
  see: (obj: T) => boolean,
): Promise<void> {
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const feed = (obj: T) => {
    if (!stop.signal.aborted && see(obj)) stop.abort();
  };
  await runWatcher<T>(
    clientListWatcher<T>(client, type, { namespace: NS }),
    (ev) => {
      if (ev.type === 'applied') feed(ev.object);
      else if (ev.type !== 'deleted') for (const o of ev.objects) feed(o);
    },
    both,
  );
}

/** Calls `onReady` once for every benchmark Message that is or turns Ready; returns when it returns true or `signal` fires. */
export async function followReady(client: KubeClient, signal: AbortSignal, onReady: (name: string) => boolean): Promise<void> {
  const seen = new Set<string>();
  await follow<Message>(client, MessageResource, signal, (m) => {
    const name = m.metadata.name ?? '';
    if (!name.startsWith('m-') || seen.has(name) || !isReady(m)) return false;
    seen.add(name);
    return onReady(name);
  });
}

/** Resolves when every Message named `m-0`…`m-(n-1)` is Ready. */
export async function waitAllReady(client: KubeClient, n: number, signal: AbortSignal): Promise<void> {
  let ready = 0;
  await followReady(client, signal, () => ++ready >= n);
  if (ready < n) throw new Error(`only ${ready} of ${n} Messages became Ready`);
}
