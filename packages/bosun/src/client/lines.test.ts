import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { LineSplitter } from './lines.js';

function split(chunks: Buffer[]): string[] {
  const s = new LineSplitter();
  const out: string[] = [];
  for (const c of chunks) out.push(...s.push(c));
  out.push(...s.end());
  return out;
}

test('lines split across chunks, blank lines skipped, a last line without newline kept', () => {
  const text = '{"a":1}\n\n{"b":2}\r\n{"c"' + ':3}\n{"d":4}';
  const bytes = Buffer.from(text);
  for (const size of [1, 2, 3, 7, bytes.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    assert.deepEqual(split(chunks), ['{"a":1}', '{"b":2}\r', '{"c":3}', '{"d":4}'], `chunk size ${size}`);
  }
});

test('a multi-byte character split between chunks decodes whole', () => {
  const bytes = Buffer.from('{"name":"é€😀"}\n');
  const parts = [bytes.subarray(0, 10), bytes.subarray(10, 11), bytes.subarray(11, 13), bytes.subarray(13)];
  assert.deepEqual(split(parts), ['{"name":"é€😀"}']);
});

test('a 64 MiB line in 16 KiB chunks is scanned once, not from its start on every chunk', { timeout: 30_000 }, () => {
  // Rescanning would touch 4,096 chunks × 32 MiB on average = 128 GiB: minutes, against well under a second.
  const chunk = Buffer.alloc(16 * 1024, 'x');
  const s = new LineSplitter();
  const started = process.hrtime.bigint();
  s.push(Buffer.from('{"v":"'));
  for (let i = 0; i < 4096; i++) assert.equal(s.push(chunk).length, 0);
  const lines = s.push(Buffer.from('"}\n{"next":1}\n'));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.length, 64 * 1024 * 1024 + 8);
  assert.equal(lines[1], '{"next":1}');
  assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});
