// The bosun contender of bench/webhook.ts as a program of its own, so its CPU and memory are its own: the Widget
// webhook served by startWebhookServer (the server a Manager runs with `webhookServer`), with a Metrics registry
// and an info-level JSON logger on stdout as a Manager has. bench/lib/webhook-peers.ts bundles it and runs it
// with plain node (no TypeScript loader in the measured process).
//
//   node webhook-bosun.mjs --cert-dir DIR [--addr 127.0.0.1:0] [--contender bosun]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from 'bosun';
import { Metrics, startWebhookServer } from 'bosun/runtime';
import { widgetWebhook } from './webhook-widget.js';

const { values } = parseArgs({
  options: {
    'cert-dir': { type: 'string' },
    addr: { type: 'string', default: '127.0.0.1:0' },
    contender: { type: 'string', default: 'bosun' },
  },
});
const certDir = values['cert-dir'];
if (!certDir) {
  process.stderr.write('webhook-bosun: --cert-dir DIR (with tls.crt and tls.key) is required\n');
  process.exit(2);
}
const logger = createLogger({ level: 'info', format: 'json' });
const server = await startWebhookServer({
  webhooks: [widgetWebhook(values.contender)],
  addr: values.addr,
  tls: { certFile: join(certDir, 'tls.crt'), keyFile: join(certDir, 'tls.key') },
  logger,
  metrics: new Metrics(),
});
for (const sig of ['SIGTERM', 'SIGINT'] as const)
  process.once(sig, () => {
    void server.close().finally(() => process.exit(0));
  });
