/**
 * Splits a byte stream into newline-delimited lines (watch streams carry one JSON event per line).
 *
 * Only each new chunk is searched for a newline, and the bytes of an unfinished line are kept as
 * chunks until its newline arrives: a multi-megabyte object spread over many chunks costs one pass,
 * not one pass per chunk. Splitting bytes is safe for UTF-8, whose multi-byte sequences never
 * contain 0x0A.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Feeds one chunk; returns the non-blank lines it completed. */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    let nl = chunk.indexOf(0x0a);
    while (nl >= 0) {
      let line: string;
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.pending, this.pendingBytes + nl - start).toString('utf8');
        this.pending = [];
        this.pendingBytes = 0;
      } else line = chunk.toString('utf8', start, nl);
      if (line.trim() !== '') out.push(line);
      start = nl + 1;
      nl = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      this.pending.push(start === 0 ? chunk : chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
    }
    return out;
  }

  /** Ends the stream; returns the last line if it had no newline. */
  end(): string[] {
    const rest = Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return rest.trim() === '' ? [] : [rest];
  }
}
