// Two replicas of the Message operator as separate processes with leader election, under a rolling
// restart: SIGTERM to the leader while 500 Messages converge. The Lease must change hands only after
// the old leader's last write, and no Message may ever own two Pods.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { KubeClient } from '../../packages/bosun/src/client/client.js';
import type { KubeObject } from '../../packages/bosun/src/client/types.js';
import { eventually, startTestEnv, type TestEnv } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import { isReady, messageYaml } from './helpers.js';
import { watchPods } from './lib/invariants.js';
import type { WriteRecord } from './write-log.js';

const MESSAGES = 500;
const LEASE = 'bosun-message';
const LeaseType = { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true } as const;

type LeaseObject = KubeObject<{ holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseTransitions?: number }>;

/** One replica: a `bosun run message --leader-elect` process with its logs and write records. */
interface Replica {
  name: string;
  child: ChildProcess;
  logs: string[];
  writeLog: string;
  identity?: string;
  exitedAt?: number;
  exited: Promise<number | null>;
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

async function readWrites(r: Replica): Promise<WriteRecord[]> {
  const text = await readFile(r.writeLog, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as WriteRecord);
}

/** Writes that act on the operator's objects (not its Lease, not its Events). */
function objectWrites(ws: WriteRecord[]): WriteRecord[] {
  return ws.filter((w) => !w.path.includes('/leases') && !/\/events(\/|$)/.test(w.path));
}

describe('leader election under a rolling restart', () => {
  let env: TestEnv;
  let ns: string;
  let dir: string;
  let direct: KubeClient;
  const replicas: Replica[] = [];

  function startReplica(name: string): Replica {
    const writeLog = join(dir, `${name}.writes.jsonl`);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './test/fault/write-log.ts',
        'packages/bosun/src/tooling/cli/run-main.ts',
        'run',
        'message',
        '--kubeconfig',
        env.kubeconfig,
        '-n',
        ns,
        '--leader-elect',
        '--leader-election-namespace',
        ns,
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
      ],
      { env: { ...process.env, BOSUN_FAULT_WRITE_LOG: writeLog }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const r: Replica = { name, child, logs: [], writeLog, exited: Promise.resolve(null) };
    r.exited = new Promise((res) =>
      child.on('exit', (code) => {
        r.exitedAt = Date.now();
        res(code);
      }),
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        r.logs.push(line);
        if (!r.identity && line.includes('waiting for leadership')) r.identity = (JSON.parse(line) as { identity?: string }).identity;
      });
    }
    replicas.push(r);
    return r;
  }

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('fault-rollover');
    dir = await mkdtemp(join(tmpdir(), 'bosun-rollover-'));
    direct = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  });

  after(async () => {
    for (const r of replicas) if (r.exitedAt === undefined) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    direct?.close();
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test(
    `SIGTERM to the leader while ${MESSAGES} Messages converge: the Lease changes hands only after its last write, and no Message owns two Pods`,
    { timeout: 240_000 },
    async (t) => {
      const a = startReplica('a');
      const b = startReplica('b');
      await eventually('both replicas waiting for leadership', async () => (a.identity && b.identity ? true : undefined), 60_000);

      // Every version of the Lease as it was observed, to see when and how it changed hands.
      const leaseSeen: { at: number; holder: string; acquireTime?: string; transitions?: number }[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const l = await direct.get<LeaseObject>(LeaseType, ns, LEASE).catch(() => undefined);
          const holder = l?.spec?.holderIdentity ?? '';
          const last = leaseSeen.at(-1);
          if (l && (!last || last.holder !== holder || last.acquireTime !== l.spec?.acquireTime)) {
            leaseSeen.push({ at: Date.now(), holder, acquireTime: l.spec?.acquireTime, transitions: l.spec?.leaseTransitions });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();

      // Every Pod as the API server announced it, to catch two Pods of one Message even for a moment.
      const podWatch = watchPods(env.kubeconfig, ns);

      try {
        const leaderIdentity = await eventually('a leader', async () => leaseSeen.at(-1)?.holder || undefined, 60_000);
        const leader = leaderIdentity === a.identity ? a : b;
        const standby = leader === a ? b : a;
        assert.equal(leaderIdentity, leader.identity, 'the Lease names one of the two replicas');

        const tApply = Date.now();
        const docs = Array.from({ length: MESSAGES }, (_, i) => messageYaml(`m-${String(i).padStart(3, '0')}`, `rollover ${i}`)).join(
          '---\n',
        );
        let tApplied = 0;
        const applied = env.kubectlOk(['create', '-n', ns, '-f', '-'], docs).then(() => (tApplied = Date.now()));

        // Mid-convergence: the leader has written for about a third of the Messages, more are arriving.
        await eventually(
          'the leader to write for a third of the Messages',
          async () => (objectWrites(await readWrites(leader)).length >= MESSAGES / 3 ? true : undefined),
          120_000,
          100,
        );
        const tTerm = Date.now();
        leader.child.kill('SIGTERM');
        const code = await leader.exited;
        await applied;

        const newHolder = await eventually(
          'the standby to take the Lease',
          async () => (leaseSeen.some((s) => s.holder === standby.identity) ? true : undefined),
          60_000,
        );
        assert.ok(newHolder);

        const ready = await eventually(
          `all ${MESSAGES} Messages Ready`,
          async () => {
            const list = await direct.list<Message>(MessageResource, { namespace: ns });
            const n = list.items.filter(isReady).length;
            return n === MESSAGES ? n : undefined;
          },
          150_000,
          1000,
        );
        const tReady = Date.now();
        assert.equal(ready, MESSAGES);

        // No Message owns two Pods at the end, and the watch never saw two at once.
        const pods = await direct.list<KubeObject>(
          { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
          { namespace: ns },
        );
        const owners = new Map<string, string[]>();
        for (const p of pods.items) {
          for (const ref of p.metadata.ownerReferences ?? []) {
            if (ref.kind !== 'Message') continue;
            owners.set(ref.uid, [...(owners.get(ref.uid) ?? []), p.metadata.name ?? '']);
          }
        }
        const doubled = [...owners.entries()].filter(([, names]) => names.length > 1);

        const oldWrites = await readWrites(leader);
        const oldObjectWrites = objectWrites(oldWrites);
        const oldLast = Math.max(...oldObjectWrites.map((w) => w.end));
        const oldLastAny = Math.max(...oldWrites.filter((w) => !w.path.includes('/leases')).map((w) => w.end));
        const oldLeaseWrites = oldWrites.filter((w) => w.path.includes('/leases'));
        const newWrites = objectWrites(await readWrites(standby));
        const newFirst = Math.min(...newWrites.map((w) => w.start));
        // The old leader gives the Lease up by writing it without itself as the holder.
        const release = oldLeaseWrites.find((w) => w.start >= tTerm && w.method === 'PUT');
        const takeover = leaseSeen.find((s) => s.holder === standby.identity)!;
        const acquired = Date.parse(takeover.acquireTime ?? '');
        const afterTerm = oldObjectWrites.filter((w) => w.start >= tTerm).length;

        t.diagnostic(`replicas: leader ${leader.name} (${leader.identity}), standby ${standby.name} (${standby.identity})`);
        t.diagnostic(
          `create of ${MESSAGES} Messages (one kubectl create): ${iso(tApply)} → ${iso(tApplied)}; all Ready at ${iso(tReady)} (${((tReady - tApply) / 1000).toFixed(1)} s)`,
        );
        t.diagnostic(`SIGTERM to the leader: ${iso(tTerm)}; it exited at ${iso(leader.exitedAt)} with code ${code}`);
        t.diagnostic(
          `old leader: ${oldObjectWrites.length} object writes (${afterTerm} started after SIGTERM); last object write settled ${iso(oldLast)}; last write of any kind but the Lease ${iso(oldLastAny)}`,
        );
        t.diagnostic(
          `old leader's Lease writes after SIGTERM: ${JSON.stringify(oldLeaseWrites.filter((w) => w.end >= tTerm).map((w) => `${w.method} ${iso(w.start)} → ${iso(w.end)} ${w.outcome}`))}`,
        );
        t.diagnostic(
          `old leader released the Lease: ${release ? `${iso(release.start)} → ${iso(release.end)} (${(release.start - oldLast).toFixed(0)} ms after its last object write settled)` : 'no release write'}`,
        );
        t.diagnostic(
          `Lease as observed: ${JSON.stringify(leaseSeen.map((s) => ({ seen: iso(s.at), holder: s.holder, acquireTime: s.acquireTime, transitions: s.transitions })))}`,
        );
        t.diagnostic(
          `new leader: acquireTime ${takeover.acquireTime} (${(acquired - oldLast).toFixed(0)} ms after the old leader's last object write); first object write started ${iso(newFirst)} (${(newFirst - oldLast).toFixed(0)} ms after)`,
        );
        t.diagnostic(`Pods: ${pods.items.length}; most Pods of one Message seen at once by the watch: ${podWatch.max}`);

        assert.ok(oldObjectWrites.length > 0 && newWrites.length > 0, 'both replicas wrote: the rollover happened mid-convergence');
        assert.ok(Number.isFinite(acquired), `the Lease's acquireTime after the takeover parses: ${takeover.acquireTime}`);
        if (release)
          assert.ok(
            release.start > oldLast,
            `the old leader released the Lease at ${iso(release.start)}, before its last object write settled at ${iso(oldLast)}`,
          );
        assert.ok(
          acquired > oldLast,
          `the standby acquired the Lease at ${takeover.acquireTime}, before the old leader's last write settled at ${iso(oldLast)}`,
        );
        assert.ok(
          newFirst > oldLast,
          `the new leader first wrote at ${iso(newFirst)}, before the old leader's last write settled at ${iso(oldLast)}`,
        );
        assert.deepEqual(doubled, [], 'no Message owns two Pods');
        assert.equal(podWatch.doubled, undefined, `the Pod watch saw two Pods of Message ${podWatch.doubled} at once`);
      } finally {
        polling = false;
        await poller;
        podWatch.stop();
        for (const r of replicas) if (r.exitedAt === undefined) r.child.kill('SIGTERM');
        await Promise.race([Promise.all(replicas.map((r) => r.exited)), new Promise((r) => setTimeout(r, 30_000))]);
      }
    },
  );
});
