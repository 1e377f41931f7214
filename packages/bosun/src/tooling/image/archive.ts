// Container images written without Docker or a registry: a docker-archive (the format of `docker save`,
// which `ctr images import` and `docker load` both read) of one layer made from files on this machine.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tar, type TarEntry } from './tar.js';

const execFileP = promisify(execFile);

/** The runtime settings of an image (the `config` object of its image configuration). */
export interface ImageRuntimeConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  Env?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

/** What an image is made of: its name as manifests use it, its files and how it runs. */
export interface ImageSpec {
  /** The reference Pods name, e.g. `busybox:1.36` (normalized by the runtime to docker.io/library/busybox:1.36). */
  ref: string;
  files: TarEntry[];
  config: ImageRuntimeConfig;
}

/** A written image: the archive's bytes and the digests that identify it. */
export interface ImageArchive {
  ref: string;
  archive: Buffer;
  /** sha256 of the image configuration: the image ID the runtime reports. */
  configDigest: string;
  /** sha256 of the uncompressed layer. */
  layerDiffId: string;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes a docker-archive holding one image of one layer; the same spec gives the same bytes. */
export function imageArchive(spec: ImageSpec): ImageArchive {
  const layer = tar(spec.files);
  const diffId = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: spec.config,
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'bosun image build' }],
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(JSON.stringify([{ Config: `${configDigest}.json`, RepoTags: [spec.ref], Layers: [`${diffId}/layer.tar`] }]));
  const archive = tar([
    { type: 'file', name: `${configDigest}.json`, data: config },
    { type: 'dir', name: diffId },
    { type: 'file', name: `${diffId}/layer.tar`, data: layer },
    { type: 'file', name: 'manifest.json', data: manifest },
  ]);
  return { ref: spec.ref, archive, configDigest: `sha256:${configDigest}`, layerDiffId: `sha256:${diffId}` };
}

/** The name the Message Pods use for their image (operators/message DEFAULT_IMAGE). */
export const BUSYBOX_REF = 'busybox:1.36';
/** The Pod sandbox image the real node's containerd is configured with. */
export const PAUSE_REF = 'bosun.local/pause:1';

const ETC_PASSWD =
  'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const ETC_GROUP = 'root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n';

/** The busybox image: a static busybox with a link for each of its applets, /etc/passwd naming user 65532, and /tmp. */
export async function busyboxImage(busyboxPath: string): Promise<ImageSpec> {
  const data = await readFile(busyboxPath);
  const { stdout } = await execFileP(busyboxPath, ['--list']);
  const { stdout: banner } = await execFileP(busyboxPath, ['--help']).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const version = /BusyBox v([\w.-]+)/.exec(banner)?.[1] ?? 'unknown';
  const applets = [
    ...new Set(
      stdout
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s !== 'busybox'),
    ),
  ].sort();
  const files: TarEntry[] = [
    { type: 'dir', name: 'bin' },
    { type: 'file', name: 'bin/busybox', data, mode: 0o755 },
    ...applets.map((a): TarEntry => ({ type: 'symlink', name: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', name: 'etc' },
    { type: 'file', name: 'etc/passwd', data: Buffer.from(ETC_PASSWD) },
    { type: 'file', name: 'etc/group', data: Buffer.from(ETC_GROUP) },
    { type: 'dir', name: 'home' },
    { type: 'dir', name: 'home/nonroot' },
    { type: 'dir', name: 'tmp', mode: 0o1777 },
  ];
  return {
    ref: BUSYBOX_REF,
    files,
    config: {
      Cmd: ['sh'],
      Env: ['PATH=/bin'],
      // The name is the one the manifests use; the label says which busybox is really inside.
      Labels: { 'dev.bosun.image.source': `busybox-static ${version} (${busyboxPath})` },
    },
  };
}

/** The pause image: the one static program that holds a Pod's namespaces. */
export async function pauseImage(pausePath: string): Promise<ImageSpec> {
  return {
    ref: PAUSE_REF,
    files: [{ type: 'file', name: 'pause', data: await readFile(pausePath), mode: 0o755 }],
    config: { Entrypoint: ['/pause'], User: '65535:65535' },
  };
}

/** The name of the image the Application tests serve HTTP with. */
export const HTTPD_REF = 'bosun.local/httpd:1';
/** What the httpd image serves at `/`. */
export const HTTPD_INDEX = 'hello from bosun httpd\n';

/** The httpd image: the busybox image serving /www on port 8080 as user 65532 (an image's default command, as an Application runs it). */
export async function httpdImage(busyboxPath: string): Promise<ImageSpec> {
  const busybox = await busyboxImage(busyboxPath);
  return {
    ref: HTTPD_REF,
    files: [...busybox.files, { type: 'dir', name: 'www' }, { type: 'file', name: 'www/index.html', data: Buffer.from(HTTPD_INDEX) }],
    config: { ...busybox.config, Cmd: ['httpd', '-f', '-v', '-p', '8080', '-h', '/www'], User: '65532:65532' },
  };
}
