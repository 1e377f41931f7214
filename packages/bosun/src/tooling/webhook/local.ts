// What `bosun run` does with a project's webhooks: where the certificates come from, and whether the API server
// can reach a server on this machine (so registering it makes sense), decided before anything connects.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isIP } from 'node:net';

/** Whether an API server URL is on this machine's loopback, so it can call a webhook server listening on 127.0.0.1. */
export function isLoopbackServer(serverUrl: string): boolean {
  let host: string;
  try {
    host = new URL(serverUrl).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * The directory of the local webhook certificates: `<cluster dir>/webhook` when the kubeconfig is the one a
 * `bosun cluster up` directory holds (its CA then lives beside the cluster it serves), else `.bosun/webhook`
 * under `cwd`.
 */
export function localCertDir(kubeconfig: string | undefined, cwd = process.cwd()): string {
  const file = kubeconfig ?? process.env.KUBECONFIG?.split(':').find(Boolean);
  if (file) {
    const dir = dirname(resolve(cwd, file));
    if (existsSync(join(dir, 'state.json')) && existsSync(join(dir, 'pki'))) return join(dir, 'webhook');
  }
  return resolve(cwd, '.bosun', 'webhook');
}

/** The address a local webhook server listens on when none is given: loopback only, a free port. */
export const DEFAULT_LOCAL_WEBHOOK_ADDR = '127.0.0.1:0';

/** The name of the configurations `bosun run` registers for a project: one per project, stable across runs. */
export function localRegistrationName(project: { prefix?: string }, operators: readonly string[]): string {
  const base = (project.prefix ?? operators.join('-'))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `bosun-local-${base || 'project'}`.slice(0, 253);
}
