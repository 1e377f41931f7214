// A minimal ustar writer: enough for image layers and the archive around them (files, directories,
// symbolic links), byte-for-byte reproducible (fixed times and owners) so the same input gives the same digest.

/** One entry of a tar archive. */
export type TarEntry =
  | { type: 'file'; name: string; data: Buffer; mode?: number }
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'symlink'; name: string; target: string };

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mode: number, typeflag: string, linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar splits a long path at a '/' into a 155-byte prefix and a 100-byte name.
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new RangeError(`tar: path too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  if (Buffer.byteLength(linkname) > 100) throw new RangeError(`tar: link target too long for ustar: ${linkname}`);
  h.write(base, 0, 100, 'utf8');
  h.write(octal(mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime: fixed, for reproducible digests
  h.write('        ', 148, 'ascii'); // checksum placeholder: spaces while summing
  h.write(typeflag, 156, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** Packs the entries, in the order given, into an uncompressed tar archive. */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === 'file') {
      parts.push(header(e.name, e.data.length, e.mode ?? 0o644, '0'), e.data);
      const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    } else if (e.type === 'dir') {
      parts.push(header(e.name.endsWith('/') ? e.name : `${e.name}/`, 0, e.mode ?? 0o755, '5'));
    } else {
      parts.push(header(e.name, 0, 0o777, '2', e.target));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
