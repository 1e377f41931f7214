import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { transportFromEnv } from './transport-auto.js';

test('BOSUN_TRANSPORT selects the transport; unset means the config decides; a typo is an error naming the variable', () => {
  assert.equal(transportFromEnv({}), undefined);
  assert.equal(transportFromEnv({ BOSUN_TRANSPORT: '' }), undefined);
  for (const v of ['auto', 'h2', 'http1'] as const) assert.equal(transportFromEnv({ BOSUN_TRANSPORT: v }), v);
  assert.throws(() => transportFromEnv({ BOSUN_TRANSPORT: 'http2' }), /BOSUN_TRANSPORT=http2 is not a transport; use auto, h2 or http1/);
});
