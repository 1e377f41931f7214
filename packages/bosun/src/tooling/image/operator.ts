// The operator's image, written without Docker: the Dockerfile's runtime stage (compiled dist/, the
// production node_modules, a Node runtime, user 65532, the same entrypoint), from the files on this machine.
import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { BinaryError } from '../cluster/binaries.js';
import type { TarEntry } from './tar.js';
import type { ImageSpec } from './archive.js';

const execFileP = promisify(execFile);

/** The name config/manager/kustomization.yaml gives the operator image, which `make deploy IMG=` also takes. */
export const OPERATOR_REF = 'ghcr.io/bosun-dev/bosun:0.1.0';
/**
 * The Node flags the operator image runs with. V8's young generation grows to 2 × 16 MiB under an operator's
 * burst of watch events and stays at its high-water mark; capped at 2 × 4 MiB it costs no measurable CPU or
 * convergence time and 15–20 MiB of peak RSS less at 1,000 Messages (docs/benchmarks.md). V8 reads the cap
 * when it creates the heap, so it is a flag of the process, not something the runtime can set.
 */
export const OPERATOR_NODE_FLAGS = ['--max-semi-space-size=4'];
/** The entrypoint the Dockerfile gives the image: the compiled project module, no TypeScript loader. */
export const OPERATOR_ENTRYPOINT = [
  'node',
  ...OPERATOR_NODE_FLAGS,
  'packages/bosun/bin/bosun.js',
  'run',
  '--from',
  'dist/operators/index.js',
];
/** The user the Dockerfile runs as (distroless's nonroot). */
export const OPERATOR_USER = '65532:65532';

function skip(rel: string): boolean {
  return /\.test\.(js|d\.ts)$/.test(rel) || rel.endsWith('.map') || rel.endsWith('/.built') || rel === '.built';
}

/** Every file, directory and link under `dir`, named `prefix/<path>` in the image; `prune` leaves subtrees out. */
async function tree(dir: string, prefix: string, out: TarEntry[], prune: (rel: string) => boolean = () => false): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = join(d, e.name);
      const rel = relative(dir, abs);
      if (prune(rel) || skip(rel)) continue;
      const name = join(prefix, rel);
      if (e.isSymbolicLink()) out.push({ type: 'symlink', name, target: await readlink(abs) });
      else if (e.isDirectory()) {
        out.push({ type: 'dir', name });
        await walk(abs);
      } else if (e.isFile()) out.push({ type: 'file', name, data: await readFile(abs), mode: (await lstat(abs)).mode & 0o755 });
    }
  };
  out.push({ type: 'dir', name: prefix });
  await walk(dir);
}

/** The Node runtime this process runs on, with the shared libraries ldd names, at the paths the loader looks for them. */
async function nodeRuntime(out: TarEntry[]): Promise<void> {
  const node = await realpath(process.execPath);
  out.push({ type: 'dir', name: 'usr' }, { type: 'dir', name: 'usr/bin' });
  out.push({ type: 'file', name: 'usr/bin/node', data: await readFile(node), mode: 0o755 });
  const { stdout } = await execFileP('ldd', [node]);
  const dirs = new Set<string>();
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)/.exec(line)?.[1];
    if (!path) continue;
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        if (d !== 'usr' && d !== 'usr/bin') out.push({ type: 'dir', name: d });
      }
    }
    out.push({ type: 'file', name: parts.join('/'), data: await readFile(await realpath(path)), mode: 0o755 });
  }
}

/** This machine's CA bundle, where Debian's Node looks for it (it warns at every start when it is missing). */
async function caBundle(): Promise<TarEntry[]> {
  const data = await readFile('/etc/ssl/certs/ca-certificates.crt').catch(() => undefined);
  if (!data) return [];
  return [
    { type: 'dir', name: 'etc/ssl' },
    { type: 'dir', name: 'etc/ssl/certs' },
    { type: 'file', name: 'etc/ssl/certs/ca-certificates.crt', data },
  ];
}

/**
 * The operator image from the workspace at `root`: what the Dockerfile's runtime stage holds, with the
 * production dependencies npm lists (`npm ls --omit=dev`) copied from the installed node_modules.
 */
export async function operatorImage(root: string): Promise<ImageSpec> {
  for (const built of ['packages/bosun/dist/index.js', 'dist/operators/index.js']) {
    await lstat(join(root, built)).catch(() => {
      throw new BinaryError(
        `the operator image is made from compiled JavaScript, and ${join(root, built)} is missing; run make build first`,
      );
    });
  }
  const { stdout } = await execFileP('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: root, maxBuffer: 16 << 20 }).catch(
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }), // npm ls exits 1 on extraneous packages but still lists
  );
  const modules = join(root, 'node_modules');
  const prod = new Set(
    stdout
      .split('\n')
      .filter((p) => p.startsWith(`${modules}/`))
      .map((p) => relative(modules, p)),
  );
  const files: TarEntry[] = [];
  await nodeRuntime(files);
  files.push(
    { type: 'dir', name: 'etc' },
    {
      type: 'file',
      name: 'etc/passwd',
      data: Buffer.from('root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n'),
    },
    { type: 'file', name: 'etc/group', data: Buffer.from('root:x:0:\nnonroot:x:65532:\n') },
    { type: 'dir', name: 'tmp', mode: 0o1777 },
    ...(await caBundle()),
    { type: 'dir', name: 'app' },
    { type: 'dir', name: 'app/packages' },
    { type: 'dir', name: 'app/operators' },
  );
  for (const f of ['package.json', 'package-lock.json', 'packages/bosun/package.json'])
    files.push({ type: 'file', name: `app/${f}`, data: await readFile(join(root, f)) });
  await tree(join(root, 'packages/bosun/bin'), 'app/packages/bosun/bin', files);
  await tree(join(root, 'packages/bosun/dist'), 'app/packages/bosun/dist', files);
  await tree(join(root, 'dist'), 'app/dist', files);
  for (const op of (await readdir(join(root, 'operators'), { withFileTypes: true })).filter((e) => e.isDirectory())) {
    const pkg = await readFile(join(root, 'operators', op.name, 'package.json')).catch(() => undefined);
    if (!pkg) continue;
    files.push(
      { type: 'dir', name: `app/operators/${op.name}` },
      { type: 'file', name: `app/operators/${op.name}/package.json`, data: pkg },
    );
  }
  // Workspace packages are links in node_modules (bosun -> ../packages/bosun); npm lists their targets.
  const listed = new Set(stdout.split('\n').filter(Boolean));
  for (const top of await readdir(modules)) {
    const names = top.startsWith('@') ? (await readdir(join(modules, top)).catch(() => [] as string[])).map((n) => `${top}/${n}`) : [top];
    for (const n of names) {
      if (!(await lstat(join(modules, n))).isSymbolicLink()) continue;
      if (listed.has(await realpath(join(modules, n)).catch(() => ''))) prod.add(n);
    }
  }
  const pkgs = [...prod];
  await tree(modules, 'app/node_modules', files, (rel) => {
    // Kept: a listed package, what is inside it (but its own node_modules, whose packages are listed on their own), and the directories leading to one.
    if (pkgs.some((p) => p === rel || p.startsWith(`${rel}/`))) return false;
    const owner = pkgs.filter((p) => rel.startsWith(`${p}/`)).sort((a, b) => b.length - a.length)[0];
    if (!owner) return true;
    const rest = rel.slice(owner.length + 1);
    return rest === 'node_modules' || rest.startsWith('node_modules/');
  });
  return {
    ref: OPERATOR_REF,
    files,
    config: {
      Entrypoint: OPERATOR_ENTRYPOINT,
      User: OPERATOR_USER,
      WorkingDir: '/app',
      Env: ['PATH=/usr/bin', 'NODE_ENV=production'],
      Labels: { 'dev.bosun.image.source': 'bosun image build (the Dockerfile runtime stage, without Docker)' },
    },
  };
}
