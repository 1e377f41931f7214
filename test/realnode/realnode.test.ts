// The Message operator's first promise for real: on a cluster with a real node, the example Message's Pod runs on it and
// `kubectl logs` prints the text; a new text, a new Pod printing it. Then `cluster down` leaves the machine as it was.
// It needs root on Linux (CI runs as root); its cluster is its own, never the shared test cluster.
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from 'bosun';
import {
  eventually,
  runControllers,
  runKubectl,
  startTestEnv,
  writeTokenKubeconfig,
  type RunningControllers,
  type TestEnv,
} from 'bosun/envtest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { operatorImage, OPERATOR_REF } from '../../packages/bosun/src/tooling/image/operator.js';
import { httpdImage, HTTPD_INDEX, HTTPD_REF } from '../../packages/bosun/src/tooling/image/archive.js';
import { ensureHostPrograms } from '../../packages/bosun/src/tooling/node/prereqs.js';
import { down, up } from '../../packages/bosun/src/tooling/cluster/controlplane.js';
import { diffSnapshots, snapshotHost, type HostSnapshot } from '../../packages/bosun/src/tooling/node/host.js';
import {
  ctr,
  importImage,
  REAL_NODE_LABEL,
  REAL_NODE_NAME,
  REAL_NODE_TAINT,
  realNodeStatus,
} from '../../packages/bosun/src/tooling/node/realnode.js';
import { messageController } from '../../operators/message/reconciler.js';
import { REAL_NODE_PLACEMENT, TEXT_HASH_ANNOTATION, podName } from '../../operators/message/pod.js';
import type { Message } from '../../operators/message/resource.js';

const execFileP = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const DIR = resolve('.bosun/test-realnode');
const REAL_NODE_TOLERATION = REAL_NODE_PLACEMENT.tolerations[0];
const OTHER_DIR = resolve('.bosun/test-realnode-second');
const why =
  process.platform !== 'linux' ? 'a real node needs Linux' : process.getuid?.() !== 0 ? 'a real node needs root (CI runs as root)' : false;

type Pod = KubeObject<{ nodeName?: string }, { phase?: string }>;

const progress = (l: string) => process.stderr.write(`${l}\n`);

describe('a real node', { skip: why }, () => {
  let env: TestEnv;
  let ns: string;
  let op: RunningControllers | undefined;
  let hostBefore: HostSnapshot;
  const savedNodeEnv = process.env.MESSAGE_POD_NODE;

  async function getJson<T>(args: string[]): Promise<T | undefined> {
    const r = await env.kubectl([...args, '-o', 'json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
  }

  /** Waits for the Message's Pod printing `text` to have finished, and returns it. */
  async function finishedPodFor(name: string, text: string, namespace = ns): Promise<Pod> {
    const msg = (await getJson<Message>(['get', '-n', namespace, 'message', name]))!;
    const want = (await import('../../operators/message/pod.js')).textHash(text);
    // 90 s: the Pod's start on the real node took 2-3 s here; the bound leaves room for a loaded 2-core machine.
    return eventually(
      `Pod ${podName(msg)} printing "${text}" to finish`,
      async () => {
        const pod = await getJson<Pod>(['get', '-n', namespace, 'pod', podName(msg)]);
        if (pod?.metadata.annotations?.[TEXT_HASH_ANNOTATION] !== want) return undefined;
        if (pod.status?.phase === 'Failed') assert.fail(`Pod ${podName(msg)} failed: ${JSON.stringify(pod.status)}`);
        return pod.status?.phase === 'Succeeded' ? pod : undefined;
      },
      90_000,
      200,
    );
  }

  before(async () => {
    // A run that died before its down left this directory's cluster: stop it, which also undoes its node.
    await down({ dir: DIR, purge: true, progress });
    hostBefore = await snapshotHost();
    const t0 = Date.now();
    await up({ dir: DIR, node: 'real', progress, timeoutMs: 180_000 });
    progress(`realnode test: cluster up --node real in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    env = await startTestEnv({ dir: DIR, crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('realnode');
    process.env.MESSAGE_POD_NODE = 'real';
    op = runControllers(env, [messageController], { namespaces: [ns] });
  });

  after(async () => {
    await op?.stop();
    if (savedNodeEnv === undefined) delete process.env.MESSAGE_POD_NODE;
    else process.env.MESSAGE_POD_NODE = savedNodeEnv;
    await down({ dir: OTHER_DIR, purge: true, progress });
    await down({ dir: DIR, purge: true, progress });
  });

  test('kubectl apply -f examples/message.yaml: its Pod runs on the real node and kubectl logs prints exactly the text', async () => {
    const example = await readFile('examples/message.yaml', 'utf8');
    const text = /text:\s*"(.*)"/.exec(example)?.[1];
    assert.ok(text, 'examples/message.yaml has a spec.text');
    const t0 = Date.now();
    await env.kubectlOk(['apply', '-n', ns, '-f', 'examples/message.yaml']);
    const pod = await finishedPodFor('example-message', text);
    progress(`realnode test: Message applied -> its Pod Succeeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(pod.spec?.nodeName, REAL_NODE_NAME);
    assert.equal(await env.kubectlOk(['logs', '-n', ns, pod.metadata.name!]), `${text}\n`);
  });

  test('a text change: the new Pod prints the new text', async () => {
    const text = 'a new text, printed by a new Pod';
    await env.kubectlOk(['patch', '-n', ns, 'message', 'example-message', '--type=merge', '-p', JSON.stringify({ spec: { text } })]);
    const pod = await finishedPodFor('example-message', text);
    assert.equal(pod.spec?.nodeName, REAL_NODE_NAME);
    assert.equal(await env.kubectlOk(['logs', '-n', ns, pod.metadata.name!]), `${text}\n`);
  });

  test('a Pod that does not tolerate the real node lands on the kwok node', async () => {
    await env.kubectlOk(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'plain' },
        spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] },
      }),
    );
    const node = await eventually(
      'Pod plain to be scheduled',
      async () => (await getJson<Pod>(['get', '-n', ns, 'pod', 'plain']))?.spec?.nodeName,
    );
    assert.equal(node, 'bosun-node-0');
  });

  test('a second cluster asking for a real node is refused, naming the cluster that has it', async () => {
    await assert.rejects(up({ dir: OTHER_DIR, node: 'real', progress }), (err: Error) => {
      assert.match(err.message, new RegExp(`real node belongs to the cluster in ${DIR.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(err.message, /bosun cluster down --dir/);
      return true;
    });
  });

  test('after the node crashes (kubelet, containerd, kube-proxy killed), up starts it again and Pods run', async () => {
    const pids = JSON.parse(await readFile(join(DIR, 'node', 'pids.json'), 'utf8')) as Record<string, number>;
    for (const pid of Object.values(pids)) process.kill(pid, 'SIGKILL');
    await eventually('the node programs gone', async () => ((await realNodeStatus(DIR)).some((p) => p.running) ? undefined : true));
    await up({ dir: DIR, node: 'real', progress, timeoutMs: 180_000 });
    assert.deepEqual(
      (await realNodeStatus(DIR)).map((p) => `${p.name} ${p.running}`),
      ['containerd true', 'kubelet true', 'kube-proxy true'],
    );
    const text = 'printed after a crash';
    await env.kubectlOk(['patch', '-n', ns, 'message', 'example-message', '--type=merge', '-p', JSON.stringify({ spec: { text } })]);
    const pod = await finishedPodFor('example-message', text);
    assert.equal(await env.kubectlOk(['logs', '-n', ns, pod.metadata.name!]), `${text}\n`);
  });

  test('make deploy onto the real node: the operator runs as a real Pod, in-cluster, probed, restricted, non-root, read-only, and reconciles', async () => {
    // The deployed operator watches every namespace: the in-process one stops so only one reconciles.
    await op?.stop();
    op = undefined;
    await importImage(DIR, await operatorImage(REPO));
    // NODE=real applies config/realnode: config/default placed on the tainted real node.
    await execFileP('make', ['deploy', 'NODE=real', `IMG=${OPERATOR_REF}`, `KUBECONFIG=${env.kubeconfig}`], {
      cwd: REPO,
      maxBuffer: 16 << 20,
    });
    assert.match(
      await env.kubectlOk(['get', 'namespace', 'bosun-system', '-o', 'jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}']),
      /^restricted$/,
    );
    // 180 s: two Pods each start in about 3 s here and pass the readiness probe once the caches sync.
    await env.kubectlOk(['rollout', 'status', '-n', 'bosun-system', 'deployment/bosun-controller-manager', '--timeout=180s']);
    type OpPod = KubeObject<
      { nodeName?: string },
      { conditions?: { type: string; status: string }[]; containerStatuses?: { containerID?: string; restartCount: number }[] }
    >;
    const pods = (await getJson<{ items: OpPod[] }>([
      'get',
      'pods',
      '-n',
      'bosun-system',
      '-l',
      'app.kubernetes.io/name=bosun',
    ]))!.items.filter((p) => !p.metadata.deletionTimestamp && p.spec?.nodeName === REAL_NODE_NAME);
    assert.equal(pods.length, 2, 'both replicas on the real node');
    const tasks = await ctr(DIR, ['-n', 'k8s.io', 'tasks', 'ls']);
    for (const pod of pods) {
      assert.ok(
        pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        `${pod.metadata.name} Ready`,
      );
      const id = pod.status?.containerStatuses?.[0]?.containerID?.replace('containerd://', '') ?? '';
      const pid = Number(new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(tasks)?.[1]);
      assert.ok(pid > 0, `the container of ${pod.metadata.name} runs (ctr tasks ls):\n${tasks}`);
      // What the kernel says of the process, not what the Pod spec asked for.
      assert.match(await readFile(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
      const rootMount = (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n').find((l) => l.split(' ')[4] === '/');
      assert.match(rootMount?.split(' ')[5] ?? '', /^ro(,|$)/, `root file system of ${pod.metadata.name}: ${rootMount}`);
    }
    const ns2 = await env.namespace('realnode-deployed');
    await env.kubectlOk(['apply', '-n', ns2, '-f', 'examples/message.yaml']);
    await env.kubectlOk(['wait', '-n', ns2, '--for=condition=Ready', 'message/example-message', '--timeout=60s']);
    // config/realnode gives the deployed operator MESSAGE_POD_NODE=real: the Pod it makes runs on the real node too.
    const text = /text:\s*"(.*)"/.exec(await readFile(join(REPO, 'examples/message.yaml'), 'utf8'))?.[1] ?? '';
    const deployedPod = await finishedPodFor('example-message', text, ns2);
    assert.equal(deployedPod.spec?.nodeName, REAL_NODE_NAME, "the deployed operator's Message Pod runs on the real node");
    assert.equal(await env.kubectlOk(['logs', '-n', ns2, deployedPod.metadata.name!]), `${text}\n`);
    const token = (await env.kubectlOk(['create', 'token', '-n', 'bosun-system', 'bosun-controller-manager'])).trim();
    const tokenKc = await writeTokenKubeconfig({ adminKubeconfig: env.kubeconfig, token, file: join(DIR, 'operator-token.kubeconfig') });
    const write = await runKubectl(tokenKc, ['create', 'secret', 'generic', 'not-allowed', '-n', 'bosun-system', '--from-literal=a=b']);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /secrets is forbidden: User "system:serviceaccount:bosun-system:bosun-controller-manager" cannot create/);
  });

  test('an Application on the real node: its Service answers HTTP from a Pod, through kube-proxy', async () => {
    // The operator deployed by the test before reconciles Applications; its CRD came with make deploy.
    await importImage(DIR, await httpdImage((await ensureHostPrograms(progress)).busybox));
    const ns3 = await env.namespace('realnode-app');
    await env.kubectlOk(
      ['apply', '-n', ns3, '-f', '-'],
      JSON.stringify({
        apiVersion: 'shclub.github.io/v1',
        kind: 'Application',
        metadata: { name: 'web' },
        // No replica until the Deployment is placed: a Pod on the kwok node would be a Service endpoint that does not exist.
        spec: { image: HTTPD_REF, replicas: 0, port: 8080 },
      }),
    );
    await eventually(
      "the Application's Deployment",
      async () => ((await env.kubectl(['get', 'deployment', '-n', ns3, 'web'])).code === 0 ? true : undefined),
      60_000,
    );
    await env.kubectlOk([
      'patch',
      '-n',
      ns3,
      'deployment',
      'web',
      '--type=strategic',
      '-p',
      JSON.stringify({ spec: { template: { spec: { nodeSelector: { 'bosun.dev/node': 'real' }, tolerations: [REAL_NODE_TOLERATION] } } } }),
    ]);
    await env.kubectlOk(['patch', '-n', ns3, 'application', 'web', '--type=merge', '-p', '{"spec":{"replicas":1}}']);
    await env.kubectlOk(['wait', '-n', ns3, '--for=jsonpath={.status.readyReplicas}=1', 'deployment/web', '--timeout=120s']);
    const ip = (await env.kubectlOk(['get', 'service', '-n', ns3, 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    await env.kubectlOk(
      ['apply', '-n', ns3, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client' },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          ...REAL_NODE_PLACEMENT,
          // nc, not busybox wget: the static busybox's wget crashes (glibc's resolver in a static binary).
          // Retried (20 times, 0.5 s apart): kube-proxy programs the new endpoint a moment after the Pod is ready.
          containers: [
            {
              name: 'main',
              image: 'busybox:1.36',
              command: [
                'sh',
                '-c',
                `for i in $(seq 20); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 8080 && exit 0; sleep 0.5; done; exit 1`,
              ],
            },
          ],
        },
      }),
    );
    const phase = await eventually(
      'the client Pod to finish',
      async () => {
        const p = (await getJson<Pod>(['get', '-n', ns3, 'pod', 'client']))?.status?.phase;
        return p === 'Succeeded' || p === 'Failed' ? p : undefined;
      },
      90_000,
      200,
    );
    const logs = await env.kubectlOk(['logs', '-n', ns3, 'client']);
    assert.equal(phase, 'Succeeded', `client: ${logs}`);
    assert.match(logs, /^HTTP\/1\.[01] 200 OK\r?\n/);
    assert.equal(
      logs
        .split(/\r?\n\r?\n/)
        .slice(1)
        .join('\n\n'),
      HTTPD_INDEX,
    );
  });

  test('cluster down leaves the machine as it was: sysctls, shared directories, links, mounts, cgroups, iptables', async () => {
    await op?.stop();
    op = undefined;
    await down({ dir: OTHER_DIR, purge: true, progress });
    await down({ dir: DIR, purge: true, progress });
    assert.deepEqual(diffSnapshots(hostBefore, await snapshotHost()), []);
    const left = await eventually('no process of the cluster left', async () => {
      const { readdir } = await import('node:fs/promises');
      for (const e of await readdir('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
        if (cmd.includes(DIR)) return undefined;
      }
      return true;
    });
    assert.equal(left, true);
  });
});

test("the Message operator's real-node placement matches the real node's label and taint", () => {
  assert.deepEqual(REAL_NODE_PLACEMENT.nodeSelector, { [REAL_NODE_LABEL.key]: REAL_NODE_LABEL.value });
  assert.deepEqual(REAL_NODE_PLACEMENT.tolerations, [{ key: REAL_NODE_TAINT.key, operator: 'Exists', effect: REAL_NODE_TAINT.effect }]);
});
