// The TCP ports of a cluster's programs on 127.0.0.1: free ones, with etcd's kept across restarts.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { ClusterError } from './cluster-error.js';
import { clusterPaths } from './layout.js';

/** The port each program of a cluster listens on. */
export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

/** Resolves `port` when it is free on 127.0.0.1 (rejects when taken), or with a free one for 0. */
export async function freePort(port = 0): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(p));
    });
  });
}

/** Picks distinct free ports for a start of the cluster in `dir` (the API server's fixed when asked) and records them there. */
export async function choosePorts(dir: string, fixedApiserver?: number): Promise<Ports> {
  if (fixedApiserver !== undefined) {
    if (!Number.isInteger(fixedApiserver) || fixedApiserver < 1 || fixedApiserver > 65535) {
      throw new ClusterError(
        `--port ${fixedApiserver} is not a TCP port; give a number from 1 to 65535, or omit --port to pick a free one`,
      );
    }
    try {
      await freePort(fixedApiserver);
    } catch {
      throw new ClusterError(
        `port ${fixedApiserver} on 127.0.0.1 is already in use; choose another with --port, or omit --port to let bosun pick a free one`,
      );
    }
  }
  // etcd remembers its peer URL in its data: keep its ports across restarts of the same directory when they are free.
  let previous: Partial<Ports> = {};
  try {
    previous = JSON.parse(await readFile(clusterPaths(dir).ports, 'utf8')) as Partial<Ports>;
  } catch {
    /* first start */
  }
  const reuse = async (p: number | undefined): Promise<number> => {
    if (p) {
      try {
        return await freePort(p);
      } catch {
        /* taken now: pick another */
      }
    }
    return freePort();
  };
  const ports: Ports = {
    etcdClient: await reuse(previous.etcdClient),
    etcdPeer: await reuse(previous.etcdPeer),
    apiserver: fixedApiserver ?? (await freePort()),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
  const all = Object.values(ports);
  if (new Set(all).size !== all.length) return choosePorts(dir, fixedApiserver);
  await writeFile(clusterPaths(dir).ports, JSON.stringify(ports));
  return ports;
}
