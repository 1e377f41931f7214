import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { imageArchive, type ImageSpec } from './archive.js';

const spec: ImageSpec = {
  ref: 'example.test/tiny:1',
  files: [
    { type: 'dir', name: 'bin' },
    { type: 'file', name: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { type: 'symlink', name: 'bin/alias', target: 'tool' },
    { type: 'dir', name: 'tmp', mode: 0o1777 },
    { type: 'file', name: `deep/${'d'.repeat(90)}/${'f'.repeat(60)}`, data: Buffer.alloc(1000, 7) },
  ],
  config: { Entrypoint: ['/bin/tool'], User: '65532' },
};

test('an image archive is what docker save writes: manifest, config with the layer digest, and the layer GNU tar reads back', () => {
  const img = imageArchive(spec);
  const dir = mkdtempSync(join(tmpdir(), 'bosun-image-'));
  try {
    writeFileSync(join(dir, 'image.tar'), img.archive);
    execFileSync('tar', ['-xf', 'image.tar'], { cwd: dir });
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0]!.RepoTags, ['example.test/tiny:1']);
    const configBytes = readFileSync(join(dir, manifest[0]!.Config));
    assert.equal(`sha256:${createHash('sha256').update(configBytes).digest('hex')}`, img.configDigest);
    const config = JSON.parse(configBytes.toString()) as { config: unknown; rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.config, spec.config);
    const layer = readFileSync(join(dir, manifest[0]!.Layers[0]!));
    assert.deepEqual(config.rootfs.diff_ids, [`sha256:${createHash('sha256').update(layer).digest('hex')}`]);

    execFileSync('mkdir', ['rootfs'], { cwd: dir });
    execFileSync('tar', ['-xf', join(dir, manifest[0]!.Layers[0]!), '-C', 'rootfs'], { cwd: dir });
    const root = join(dir, 'rootfs');
    assert.equal(readFileSync(join(root, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(statSync(join(root, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(root, 'bin/alias')), 'tool');
    assert.equal(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
    assert.deepEqual(readFileSync(join(root, `deep/${'d'.repeat(90)}/${'f'.repeat(60)}`)), Buffer.alloc(1000, 7));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same spec gives the same bytes, so an image keeps its ID across builds', () => {
  const a = imageArchive(spec);
  const b = imageArchive(spec);
  assert.equal(a.configDigest, b.configDigest);
  assert.ok(a.archive.equals(b.archive));
});
