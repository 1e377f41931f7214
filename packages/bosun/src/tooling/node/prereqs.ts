// What a real node needs from the host that bosun does not build: the container runtime (containerd,
// runc), the CNI plugins, nft for kube-proxy and a static busybox for the images. On Debian as root they are installed
// with apt-get; anywhere else the error says what to install.
import { execFile } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Progress } from '../cluster/binaries.js';
import { ClusterError } from '../cluster/cluster-error.js';

const execFileP = promisify(execFile);

/** Where the host programs a real node runs were found. */
export interface HostPrograms {
  containerd: string;
  ctr: string;
  runc: string;
  /** The directory holding the CNI plugins bridge, host-local and loopback. */
  cniBinDir: string;
  /** A statically linked busybox, copied into the busybox image. */
  busybox: string;
  /** nft, which kube-proxy (nftables mode) writes its own tables with. */
  nft: string;
}

/** Each program, the paths Debian's packages put it at, and the package that brings it. */
const NEEDS = [
  { what: 'containerd', paths: ['/usr/bin/containerd'], pkg: 'containerd' },
  { what: 'ctr', paths: ['/usr/bin/ctr'], pkg: 'containerd' },
  { what: 'containerd-shim-runc-v2', paths: ['/usr/bin/containerd-shim-runc-v2'], pkg: 'containerd' },
  { what: 'runc', paths: ['/usr/sbin/runc', '/usr/bin/runc'], pkg: 'runc' },
  { what: 'CNI bridge plugin', paths: ['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'], pkg: 'containernetworking-plugins' },
  { what: 'CNI host-local plugin', paths: ['/usr/lib/cni/host-local', '/opt/cni/bin/host-local'], pkg: 'containernetworking-plugins' },
  { what: 'CNI loopback plugin', paths: ['/usr/lib/cni/loopback', '/opt/cni/bin/loopback'], pkg: 'containernetworking-plugins' },
  { what: 'nft', paths: ['/usr/sbin/nft'], pkg: 'nftables' },
  { what: 'static busybox', paths: ['/bin/busybox', '/usr/bin/busybox'], pkg: 'busybox-static', static: true },
] as const;

async function executable(p: string): Promise<boolean> {
  return access(p, fsc.X_OK).then(
    () => true,
    () => false,
  );
}

/** Whether an ELF executable has no program interpreter, i.e. runs in an image with nothing else in it. */
export async function isStaticElf(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // not a 64-bit ELF
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    await fh.close();
  }
}

async function find(): Promise<{ found: Partial<Record<string, string>>; missing: Set<string> }> {
  const found: Partial<Record<string, string>> = {};
  const missing = new Set<string>();
  for (const n of NEEDS) {
    let at: string | undefined;
    for (const p of n.paths) {
      if (!(await executable(p))) continue;
      if ('static' in n && !(await isStaticElf(p).catch(() => false))) continue;
      at = p;
      break;
    }
    if (at) found[n.what] = at;
    else missing.add(n.pkg);
  }
  return { found, missing };
}

async function isDebian(): Promise<boolean> {
  return readFile('/etc/debian_version', 'utf8').then(
    () => true,
    () => false,
  );
}

/**
 * Finds containerd, runc, the CNI plugins and a static busybox, installing the missing Debian packages
 * when running as root on Debian; elsewhere raises a ClusterError naming the packages to install.
 */
export async function ensureHostPrograms(progress: Progress): Promise<HostPrograms> {
  if (process.platform !== 'linux')
    throw new ClusterError(`a real node (--node real) needs Linux; this is ${process.platform}. Use the default kwok node instead.`);
  let { found, missing } = await find();
  if (missing.size > 0) {
    const pkgs = [...missing].sort();
    const root = process.getuid?.() === 0;
    if (!root || !(await isDebian())) {
      throw new ClusterError(
        `a real node (--node real) needs ${pkgs.join(', ')}, which are not installed. ` +
          (root
            ? `Install them with your distribution's package manager (on Debian: apt-get install ${pkgs.join(' ')}), then run cluster up again.`
            : `Run as root (a real node runs containerd and the kubelet, which need it), or install them first: sudo apt-get install ${pkgs.join(' ')}.`),
      );
    }
    progress(`bosun: installing ${pkgs.join(', ')} for the real node (apt-get install)`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      execFileP('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { env, timeout: 600_000, maxBuffer: 16 << 20 });
    try {
      await install();
    } catch {
      // A fresh machine has no package lists yet: fetch them once, then try again.
      await execFileP('apt-get', ['update', '-q'], { env, timeout: 600_000, maxBuffer: 16 << 20 }).catch(() => undefined);
      try {
        await install();
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new ClusterError(
          `apt-get install ${pkgs.join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' / ')}. Install them by hand and run cluster up again.`,
        );
      }
    }
    ({ found, missing } = await find());
    if (missing.size > 0)
      throw new ClusterError(
        `after apt-get install, still missing: ${[...missing].join(', ')}; install them by hand and run cluster up again.`,
      );
  }
  const cni = found['CNI bridge plugin']!;
  return {
    containerd: found.containerd!,
    ctr: found.ctr!,
    runc: found.runc!,
    cniBinDir: cni.slice(0, cni.lastIndexOf('/')),
    busybox: found['static busybox']!,
    nft: found.nft!,
  };
}
