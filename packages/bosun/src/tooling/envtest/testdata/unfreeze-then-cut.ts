// Run as a child process by faultproxy.test.ts: a connection half-closed by its client while frozen,
// then unfreeze() and cut() in the same tick. It exits on its own only if the proxy left no handle open.
import { createServer, connect, type AddressInfo } from 'node:net';
import { startFaultProxy } from '../faultproxy.js';

const server = createServer({ allowHalfOpen: true }, (s) => {
  s.on('data', (d: Buffer) => s.write(d));
  // Closing in turn, as the API server does, lets the event loop of this process empty.
  s.on('end', () => s.end());
  s.on('error', () => {});
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } });
const client = connect({ host: proxy.host, port: proxy.port });
client.on('error', () => {});
await new Promise((r) => client.once('connect', r));
client.write('x');
await new Promise((r) => client.once('data', r));
proxy.freeze();
client.end();
const deadline = Date.now() + 5000;
while (proxy.stats().ended === 0) {
  if (Date.now() > deadline) throw new Error('the proxy never read the client half-close');
  await new Promise((r) => setTimeout(r, 5));
}
proxy.unfreeze();
proxy.cut();
client.destroy();
process.stdout.write('cut; ');
// close() waits for every accepted connection to close, so a connection left half open hangs it;
// the script then goes on to exit, where a handle that never closes keeps Node polling at full CPU.
const within = <T>(p: Promise<T>) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
const closed = (await within(proxy.close())) && (await within(new Promise((r) => server.close(r))));
process.stdout.write(closed ? 'closed\n' : 'close hung; exiting\n');
