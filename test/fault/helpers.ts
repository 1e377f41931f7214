// Shared pieces of the fault suite: an in-process operator with its own kubeconfig, and Message readiness.
import { Writable } from 'node:stream';
import { OPERATORS } from '../../operators/index.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { KubeClient, type KubeClientConfig } from '../../src/client/client.js';
import { createLogger } from '../../src/log/logger.js';
import { Manager } from '../../src/manager/manager.js';

/** An operator running in this process against a given kubeconfig, with its log lines captured. */
export interface InProcessOperator {
  manager: Manager;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * Runs the named operator of `bosun run` in this process through `kubeconfig` (for example the fault
 * proxy's); `client` overrides client settings such as the transport or its dead-connection timings.
 */
export function startInProcessOperator(name: string, kubeconfig: string, namespaces: string[], client: Omit<KubeClientConfig, 'kubeconfig'> = {}): InProcessOperator {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  const manager = new Manager({
    client: KubeClient.fromConfig({ ...client, kubeconfig }),
    namespaces,
    logger: createLogger({ destination: sink, level: 'debug' }),
  });
  for (const spec of OPERATORS[name]!.controllers()) manager.add(spec);
  const ac = new AbortController();
  const done = manager.start(ac.signal);
  return {
    manager,
    logs,
    async stop() {
      ac.abort();
      await done;
    },
  };
}

/** A Message manifest (one YAML document). */
export function messageYaml(name: string, text: string, namespace?: string): string {
  const ns = namespace ? `  namespace: ${namespace}\n` : '';
  return `apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: ${name}\n${ns}spec:\n  text: ${JSON.stringify(text)}\n`;
}

/** True when the Message carries `Ready=True` for its current generation. */
export function isReady(msg: Message | undefined): boolean {
  if (!msg) return false;
  const ready = msg.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' && msg.status?.observedGeneration === msg.metadata.generation;
}

/**
 * Waits until the Message is Ready, reading it straight from the API server through `client`
 * (never through the proxy under test); resolves to the ms since `since`, or undefined at `deadline`.
 */
export async function readyWithin(client: KubeClient, namespace: string, name: string, since: number, deadline: number): Promise<number | undefined> {
  for (;;) {
    const msg = await client.get<Message>(MessageResource, namespace, name).catch(() => undefined);
    if (isReady(msg)) return performance.now() - since;
    if (performance.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}
