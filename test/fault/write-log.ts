// Preloaded into an operator process (`node --import tsx --import ./test/fault/write-log.ts …`):
// appends one JSON line per API write (every method but GET) to $BOSUN_FAULT_WRITE_LOG, with the
// wall-clock times the request started and settled, so a test can tell when a replica last wrote.
// No field of the objects says which replica wrote them (replicas share a field manager), hence this.
// With $BOSUN_FAULT_GATE_LOG, also one line per answer of the client's write gate (the leader's term
// check each write passes as it is sent): when the process last decided to send a write, which the
// API server's audit log cannot tell from when the write arrived.
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

/** One answer of the write gate, by the process's clock. */
export interface GateRecord {
  /** Date.now() when the gate was asked. */
  at: number;
  verb: string;
  kind: string;
  name?: string;
  /** Whether the gate let the write through. */
  passed: boolean;
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

const gateFile = process.env.BOSUN_FAULT_GATE_LOG;
if (gateFile) {
  type Gate = (target: { verb: string; kind: string; name?: string }) => Error | undefined;
  const p = KubeClient.prototype as unknown as { setWriteGate(this: KubeClient, gate: Gate | undefined): void };
  if (typeof p.setWriteGate !== 'function') throw new Error('write-log.ts: KubeClient.prototype.setWriteGate is gone');
  const setWriteGate = p.setWriteGate;
  p.setWriteGate = function (this: KubeClient, gate) {
    setWriteGate.call(
      this,
      gate &&
        ((target) => {
          const refused = gate(target);
          const line: GateRecord = { at: Date.now(), verb: target.verb, kind: target.kind, name: target.name, passed: !refused };
          appendFileSync(gateFile, `${JSON.stringify(line)}\n`);
          return refused;
        }),
    );
  };
}
