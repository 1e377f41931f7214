// The host-wide state a real node changes (sysctls, mounts, network links, cgroups, directories outside
// the cluster directory, iptables, nftables): a snapshot taken before the node starts, and the undo back to it.
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The bridge the real node's Pods are attached to; the name is bosun's, so it is always ours to remove. */
export const BRIDGE = 'bosun0';

/**
 * The sysctls the kubelet (its kernel tunables) and the CNI bridge plugin (IP forwarding) set. They are
 * recorded before the node starts and written back when it stops.
 */
export const TOUCHED_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
  'net/ipv4/conf/all/forwarding',
  'net/ipv4/conf/default/forwarding',
  // kube-proxy's: left alone by its configuration (conntrack settings 0, no localhost NodePorts), recorded all the same.
  'net/ipv4/conf/all/route_localnet',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
  'net/bridge/bridge-nf-call-iptables',
] as const;
/** The nftables table kube-proxy writes (in the ip and ip6 families); the name is its own, so always ours to remove. */
export const KUBE_PROXY_TABLE = 'kube-proxy';
/** The nftables table (inet) that keeps the real node's Pod traffic on this machine; bosun's name. */
export const FENCE_TABLE = 'bosun-node';

/**
 * Directories outside the cluster directory that containerd, the CNI plugins and the kubelet write to even
 * when told to keep their data elsewhere (shim sockets, the CNI result cache, the container log links).
 */
export const SHARED_DIRS = [
  '/run/containerd',
  '/var/lib/cni',
  '/var/log/containers',
  '/var/log/pods',
  '/etc/cni',
  '/var/lib/kubelet',
] as const;

/** What the host looked like: compared before and after a real node, and the base its undo works back to. */
export interface HostSnapshot {
  sysctls: Record<string, string | null>;
  /** Each shared directory's entries, or null where it did not exist. */
  dirs: Record<string, string[] | null>;
  /** Network interface names. */
  links: string[];
  /** Mount points. */
  mounts: string[];
  /** The v1 cgroup controllers holding a kubepods hierarchy. */
  kubepods: string[];
  /** `iptables-save` / `ip6tables-save` chain declarations per table, where those programs exist. */
  iptables: string[];
  /** nftables tables (`family name`), where nft exists. */
  nftables: string[];
}

async function readSysctl(key: string): Promise<string | null> {
  return readFile(`/proc/sys/${key}`, 'utf8').then(
    (s) => s.trim(),
    () => null,
  );
}

/** The mount points of this mount namespace, unescaped, in mount order. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

async function cgroupControllers(): Promise<string[]> {
  const entries = await readdir('/sys/fs/cgroup', { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => join('/sys/fs/cgroup', e.name));
}

async function chains(): Promise<string[]> {
  const out: string[] = [];
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    // -save only reads; listing with iptables -S would create the tables it lists.
    const r = await execFileP(cmd, [], { timeout: 20_000 }).catch(() => undefined);
    if (!r) continue;
    let table = '';
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith(':')) out.push(`${cmd.replace('-save', '')} ${table} ${line.slice(1).split(' ')[0] ?? ''}`);
    }
  }
  return out.sort();
}

async function nftTables(): Promise<string[]> {
  const r = await execFileP('nft', ['list', 'tables'], { timeout: 20_000 }).catch(() => undefined);
  if (!r) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim().replace(/^table /, ''))
    .filter(Boolean)
    .sort();
}

/** Reads the host state a real node may change. */
export async function snapshotHost(): Promise<HostSnapshot> {
  const sysctls: Record<string, string | null> = {};
  for (const k of TOUCHED_SYSCTLS) sysctls[k] = await readSysctl(k);
  const dirs: Record<string, string[] | null> = {};
  for (const d of SHARED_DIRS)
    dirs[d] = await readdir(d).then(
      (e) => e.sort(),
      () => null,
    );
  const links = (await readdir('/sys/class/net').catch(() => [] as string[])).sort();
  const kubepods: string[] = [];
  for (const c of await cgroupControllers()) {
    if (
      await readdir(join(c, 'kubepods')).then(
        () => true,
        () => false,
      )
    )
      kubepods.push(c);
  }
  return { sysctls, dirs, links, mounts: await mountPoints(), kubepods, iptables: await chains(), nftables: await nftTables() };
}

/** Writes the snapshot the undo works back to. */
export async function saveSnapshot(file: string, s: HostSnapshot): Promise<void> {
  await writeFile(file, JSON.stringify(s, null, 2));
}

/** Reads a saved snapshot, or undefined when there is none. */
export async function loadSnapshot(file: string): Promise<HostSnapshot | undefined> {
  return readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as HostSnapshot,
    () => undefined,
  );
}

/** Pids of the processes in a cgroup tree (every level's cgroup.procs). */
async function cgroupPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  const walk = async (d: string): Promise<void> => {
    const procs = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const l of procs.split('\n')) if (l.trim()) pids.push(Number(l));
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
  };
  await walk(dir);
  return pids;
}

/** Removes a cgroup tree, leaves first (a cgroup directory is removed with rmdir, never with its files). */
async function removeCgroupTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/** Kills (SIGKILL) every process in the kubepods cgroups: the real node's containers. */
export async function killPodProcesses(): Promise<number> {
  let n = 0;
  for (let round = 0; round < 20; round++) {
    const pids = new Set<number>();
    for (const c of await cgroupControllers()) for (const pid of await cgroupPids(join(c, 'kubepods'))) pids.add(pid);
    if (pids.size === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch {
        /* gone meanwhile */
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return n;
}

async function umount(point: string): Promise<void> {
  await execFileP('umount', [point], { timeout: 20_000 }).catch(() =>
    execFileP('umount', ['-l', point], { timeout: 20_000 }).catch(() => undefined),
  );
}

/**
 * Brings the host back to `before`, for what the real node of `nodeDir` changed: unmounts what is mounted
 * under its directories, removes the bridge, the kubepods cgroups, the new entries of the shared
 * directories and the iptables chains that appeared, and writes back the sysctls. Returns what it undid.
 */
export async function restoreHost(before: HostSnapshot, nodeDir: string): Promise<string[]> {
  const undone: string[] = [];
  const prefixes = [nodeDir, ...SHARED_DIRS.filter((d) => before.dirs[d] === null || d === '/run/containerd')];
  const had = new Set(before.mounts);
  // Deepest first: a mount under another must go before it.
  const ours = (await mountPoints()).filter((m) => !had.has(m) && prefixes.some((p) => m === p || m.startsWith(`${p}/`))).reverse();
  for (const m of ours) await umount(m);
  if (ours.length) undone.push(`unmounted ${ours.length} mounts`);

  const links = await readdir('/sys/class/net').catch(() => [] as string[]);
  if (links.includes(BRIDGE) && !before.links.includes(BRIDGE)) {
    // The Pods' veths are attached to the bridge; deleting one end of a veth deletes both.
    const ports = await readdir(`/sys/class/net/${BRIDGE}/brif`).catch(() => [] as string[]);
    for (const p of ports) await execFileP('ip', ['link', 'delete', p]).catch(() => undefined);
    await execFileP('ip', ['link', 'delete', BRIDGE]).catch(() => undefined);
    undone.push(`deleted bridge ${BRIDGE}${ports.length ? ` and ${ports.length} veths` : ''}`);
  }

  for (const c of await cgroupControllers()) {
    if (before.kubepods.includes(c)) continue;
    const k = join(c, 'kubepods');
    if (
      await readdir(k).then(
        () => true,
        () => false,
      )
    ) {
      await removeCgroupTree(k);
      undone.push(`removed ${k}`);
    }
  }

  for (const d of SHARED_DIRS) {
    const was = before.dirs[d];
    const now = await readdir(d).catch(() => null);
    if (now === null) continue;
    if (was === null || was === undefined) {
      await rm(d, { recursive: true, force: true });
      undone.push(`removed ${d}`);
    } else {
      const added = now.filter((e) => !was.includes(e));
      for (const e of added) await rm(join(d, e), { recursive: true, force: true });
      if (added.length) undone.push(`removed ${added.length} new entries of ${d}`);
    }
  }

  const newChains = (await chains()).filter((c) => !before.iptables.includes(c));
  for (const c of newChains) {
    const [cmd, table, chain] = c.split(' ') as [string, string, string];
    await execFileP(cmd, ['-t', table, '-F', chain]).catch(() => undefined);
    await execFileP(cmd, ['-t', table, '-X', chain]).catch(() => undefined);
  }
  if (newChains.length) undone.push(`removed iptables chains ${newChains.join(', ')}`);

  const newTables = (await nftTables()).filter(
    (t) => !(before.nftables ?? []).includes(t) && (t.endsWith(` ${KUBE_PROXY_TABLE}`) || t === `inet ${FENCE_TABLE}`),
  );
  for (const t of newTables) await execFileP('nft', ['delete', 'table', ...t.split(' ')]).catch(() => undefined);
  if (newTables.length) undone.push(`deleted nftables tables ${newTables.join(', ')}`);

  for (const [k, v] of Object.entries(before.sysctls)) {
    if (v === null) continue;
    if ((await readSysctl(k)) !== v) {
      await writeFile(`/proc/sys/${k}`, v).catch(() => undefined);
      undone.push(`sysctl ${k.replaceAll('/', '.')}=${v}`);
    }
  }
  return undone;
}

/** The differences between two snapshots, as lines a test or a person can read; empty when equal. */
export function diffSnapshots(a: HostSnapshot, b: HostSnapshot): string[] {
  const out: string[] = [];
  for (const k of Object.keys({ ...a.sysctls, ...b.sysctls }))
    if (a.sysctls[k] !== b.sysctls[k]) out.push(`sysctl ${k}: ${a.sysctls[k]} -> ${b.sysctls[k]}`);
  for (const d of Object.keys({ ...a.dirs, ...b.dirs })) {
    if (JSON.stringify(a.dirs[d]) !== JSON.stringify(b.dirs[d]))
      out.push(`${d}: ${JSON.stringify(a.dirs[d])} -> ${JSON.stringify(b.dirs[d])}`);
  }
  const sets = (name: string, x: string[], y: string[]) => {
    const added = y.filter((e) => !x.includes(e));
    const removed = x.filter((e) => !y.includes(e));
    if (added.length) out.push(`${name} added: ${added.join(', ')}`);
    if (removed.length) out.push(`${name} removed: ${removed.join(', ')}`);
  };
  sets('links', a.links, b.links);
  sets('mounts', a.mounts, b.mounts);
  sets('kubepods cgroups', a.kubepods, b.kubepods);
  sets('iptables chains', a.iptables, b.iptables);
  sets('nftables tables', a.nftables ?? [], b.nftables ?? []);
  return out;
}
