// Preloaded into an operator process (`node --import tsx --import ./test/fault/write-log.ts …`):
// appends one JSON line per API write (every method but GET) to $BOSUN_FAULT_WRITE_LOG, with the
// wall-clock times the request started and settled, so a test can tell when a replica last wrote.
// No field of the objects says which replica wrote them (replicas share a field manager), hence this.
import { appendFileSync } from 'node:fs';
import { KubeClient } from '../../packages/bosun/src/client/client.js';

/** One write as the operator saw it. */
export interface WriteRecord {
  /** Date.now() when the request was sent. */
  start: number;
  /** Date.now() when the answer (or the failure) arrived. */
  end: number;
  method: string;
  path: string;
  /** 'ok' or the error's message. */
  outcome: string;
}

const file = process.env.BOSUN_FAULT_WRITE_LOG;
if (!file) throw new Error('write-log.ts: set BOSUN_FAULT_WRITE_LOG to the file the write records go to');

type Request = (this: KubeClient, req: { method: string; path: string }) => Promise<unknown>;
const proto = KubeClient.prototype as unknown as { request: Request };
if (typeof proto.request !== 'function') {
  throw new Error('write-log.ts: KubeClient.prototype.request is gone; hook the method every write now goes through');
}
const original = proto.request;
proto.request = async function (this: KubeClient, req) {
  if (req.method === 'GET') return original.call(this, req);
  const start = Date.now();
  const record = (outcome: string) => {
    const line: WriteRecord = { start, end: Date.now(), method: req.method, path: req.path, outcome };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  };
  try {
    const res = await original.call(this, req);
    record('ok');
    return res;
  } catch (err) {
    record((err as Error).message ?? String(err));
    throw err;
  }
};
