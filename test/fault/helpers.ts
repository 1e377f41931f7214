// Shared pieces of the fault suite: an in-process operator with its own kubeconfig, and Message readiness.
import { operators } from '../../operators/index.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import type { KubeClient, KubeClientConfig } from '../../packages/bosun/src/client/client.js';
import { runControllers, type RunningControllers, type TestEnv } from '../../packages/bosun/src/tooling/envtest/testenv.js';

/**
 * Runs the named operator of `bosun run` in this process through `kubeconfig` (for example the fault
 * proxy's); `client` overrides client settings such as the transport or its dead-connection timings.
 */
export function startInProcessOperator(
  env: TestEnv,
  name: string,
  kubeconfig: string,
  namespaces: string[],
  client: Omit<KubeClientConfig, 'kubeconfig'> = {},
): RunningControllers {
  return runControllers(env, operators[name]!.controllers(), { namespaces, kubeconfig, client });
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
export async function readyWithin(
  client: KubeClient,
  namespace: string,
  name: string,
  since: number,
  deadline: number,
): Promise<number | undefined> {
  for (;;) {
    const msg = await client.get<Message>(MessageResource, namespace, name).catch(() => undefined);
    if (isReady(msg)) return performance.now() - since;
    if (performance.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}
