import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CLUSTER_DIR } from '../cluster/versions.js';

// The control plane (and its certificate library) loads only when a cluster command runs, not for `bosun run`.
const controlplane = () => import('../cluster/controlplane.js');

function portArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('a TCP port is a whole number from 1 to 65535');
  return n;
}

function nodeArg(v: string): 'kwok' | 'real' {
  if (v !== 'kwok' && v !== 'real') throw new InvalidArgumentError('--node is kwok (the fake node only) or real (also a real node)');
  return v;
}

/** `bosun cluster`: start, stop and inspect the local control plane. */
export function clusterCommand(): Command {
  const cmd = new Command('cluster').description(
    'run a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback',
  );
  cmd
    .command('up')
    .description('start the control plane and wait until it is ready (does nothing if it already runs)')
    /** Where the cluster keeps data, certificates, logs, pid files and its kubeconfig. */
    .option('--dir <dir>', 'cluster directory (data, certs, logs, pids, kubeconfig)', DEFAULT_CLUSTER_DIR)
    /** Pins the API server port instead of choosing a free one. */
    .option('--port <port>', 'API server port (default: a free port)', portArg)
    /** Adds one real node (kubelet + containerd; root, Linux) beside kwok's fake one, so Pods that tolerate it really run. */
    .option(
      '--node <kind>',
      'kwok (default: a fake node only) or real (also a real node: kubelet, containerd; needs root)',
      nodeArg,
      'kwok',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  bosun cluster up\n  bosun cluster up --dir /tmp/c1 --port 6443\n  sudo bosun cluster up --node real   (Pods tolerating bosun.dev/real-node run for real)\n  export KUBECONFIG=$PWD/.bosun/cluster/kubeconfig',
    )
    .action(async (o: { dir: string; port?: number; node: 'kwok' | 'real' }) => {
      const r = await (await controlplane()).up({ dir: o.dir, port: o.port, node: o.node });
      process.stdout.write(
        `${r.started ? 'started' : 'already running'}: ${r.state.apiserverUrl} (${(r.elapsedMs / 1000).toFixed(1)} s)\nexport KUBECONFIG=${r.kubeconfig}\n`,
      );
    });
  cmd
    .command('down')
    .description('stop exactly the processes this cluster directory started')
    /** Which cluster to stop. */
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    /** Also delete the cluster's data, so the next up starts empty. */
    .option('--purge', 'also delete the data, certificates and logs')
    .action(async (o: { dir: string; purge?: boolean }) => {
      await (await controlplane()).down({ dir: o.dir, purge: o.purge });
    });
  cmd
    .command('status')
    .description('tell what runs where')
    /** Which cluster to inspect. */
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    /** Machine-readable output. */
    .option('--json', 'print JSON')
    .action(async (o: { dir: string; json?: boolean }) => {
      const s = await (await controlplane()).status(o.dir);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      if (!s.exists || !s.state) {
        process.stdout.write(`no cluster in ${s.dir} (start one with: bosun cluster up --dir ${o.dir})\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(
        `cluster ${s.dir}\n  API server ${s.state.apiserverUrl} (${s.apiserverReady ? 'ready' : 'not ready'}), Kubernetes ${s.state.version}\n  kubeconfig ${s.kubeconfig}\n`,
      );
      for (const p of s.programs)
        process.stdout.write(`  ${p.name.padEnd(24)} ${p.running ? `running  pid ${p.pid}` : 'stopped'}  log ${p.log}\n`);
      let nodeRunning = true;
      if (s.state.realNode) {
        const node = await import('../node/realnode.js');
        process.stdout.write(`  real node ${node.REAL_NODE_NAME}\n`);
        for (const p of await node.realNodeStatus(s.dir)) {
          process.stdout.write(`  ${p.name.padEnd(24)} ${p.running ? `running  pid ${p.pid}` : 'stopped'}  log ${p.log}\n`);
          nodeRunning &&= p.running;
        }
      }
      if (!s.programs.every((p) => p.running) || !nodeRunning) process.exitCode = 1;
    });
  return cmd;
}
