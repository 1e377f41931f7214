// HTTP/2 against HTTP/1.1, side by side in one process against one running cluster: the CPU the
// client spends (process.cpuUsage) and the CPU the API server spends (/proc) on the same work,
// 2,000 GETs and 500 merge patches, 16 in flight, with the two transports interleaved per round.
//
//   node --import tsx bench/transport.ts [--dir .bosun/test-cluster] [--rounds 2] [--gets 2000] [--patches 500]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigMap, KubeClient, Namespace, type TransportKind } from 'bosun';
import { pool } from './lib/pool.js';
import { procCpuSeconds } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: process.env.BOSUN_TEST_CLUSTER_DIR ?? '.bosun/test-cluster' },
    rounds: { type: 'string', default: '2' },
    gets: { type: 'string', default: '2000' },
    patches: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '16' },
  },
});
const dir = resolve(values.dir);
const kubeconfig = join(dir, 'kubeconfig');
const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { pids: Record<string, number> };
const apiserverPid = state.pids['kube-apiserver'];
const gets = Number(values.gets);
const patches = Number(values.patches);
const concurrency = Number(values.concurrency);

/** The numbers 0…n-1, one per request. */
const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

interface Figures {
  transport: TransportKind;
  protocol: string;
  wallMs: number;
  clientCpuMs: number;
  apiserverCpuMs: number | undefined;
}

async function measure(transport: TransportKind, ns: string): Promise<Figures> {
  const client = KubeClient.fromConfig({ kubeconfig, transport });
  try {
    // Warm-up: connections, TLS, the JIT.
    await pool(upTo(100), concurrency, () => client.get(ConfigMap, ns, 'bench'));
    const server0 = procCpuSeconds(apiserverPid);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await pool(upTo(gets), concurrency, () => client.get(ConfigMap, ns, 'bench'));
    await pool(upTo(patches), concurrency, (i) => client.patch(ConfigMap, ns, 'bench', { data: { i: String(i) } }));
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const server1 = procCpuSeconds(apiserverPid);
    return {
      transport,
      protocol: client.protocol,
      wallMs,
      clientCpuMs: (cpu.user + cpu.system) / 1000,
      apiserverCpuMs: server0 !== undefined && server1 !== undefined ? (server1 - server0) * 1000 : undefined,
    };
  } finally {
    client.close();
  }
}

const admin = KubeClient.fromConfig({ kubeconfig });
const ns = `bench-transport-${Date.now().toString(36)}`;
await admin.create(Namespace, { metadata: { name: ns } });
try {
  await admin.create(ConfigMap, { metadata: { namespace: ns, name: 'bench' }, data: { i: '0' } });
  const rows: Figures[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const order: TransportKind[] = r % 2 === 0 ? ['h2', 'http1'] : ['http1', 'h2'];
    for (const t of order) rows.push(await measure(t, ns));
  }
  const fmt = (n: number | undefined): string => (n === undefined ? 'n/a' : n.toFixed(0));
  process.stdout.write(`${gets} GETs + ${patches} merge patches, ${concurrency} in flight, Node ${process.version}\n`);
  process.stdout.write('transport  protocol  wall ms  client CPU ms  client CPU µs/req  apiserver CPU ms\n');
  for (const f of rows) {
    process.stdout.write(
      `${f.transport.padEnd(9)}  ${f.protocol.padEnd(8)}  ${fmt(f.wallMs).padStart(7)}  ${fmt(f.clientCpuMs).padStart(13)}  ${fmt((f.clientCpuMs * 1000) / (gets + patches)).padStart(17)}  ${fmt(f.apiserverCpuMs).padStart(16)}\n`,
    );
  }
} finally {
  await admin.delete(Namespace, undefined, ns).catch(() => undefined);
  admin.close();
}
