// Readable log lines for a person at a terminal, made from the JSON lines pino writes: the JSON stays
// the one source of truth (what pipelines get), and this is a view of it.
import type { DestinationStream } from 'pino';

/** How log lines are written: `text` (readable lines), `json` (one object per line), `auto` (text on a terminal). */
export type LogFormat = 'text' | 'json' | 'auto';

/** The formats a user can choose. */
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'text', 'json'];

/** Options of `formatLine` and `textDestination`. */
export interface TextFormatOptions {
  /** ANSI colours for the level, the controller and the object (default off). */
  color?: boolean;
  /** Prints a time of day from the record's ISO time; default the local time as HH:MM:SS.mmm. */
  time?: (iso: string) => string;
}

// Fields shown in the line's fixed columns (or never: pid and hostname say nothing to the person at the terminal).
const FIXED = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'controller', 'namespace', 'name', 'v']);

const LEVEL_COLORS: Record<string, string> = {
  fatal: '\x1b[41;97m',
  error: '\x1b[31m',
  warn: '\x1b[33m',
  info: '\x1b[32m',
  debug: '\x1b[34m',
  trace: '\x1b[90m',
};
const DIM = '\x1b[2m';
const CYAN = '\x1b[36m';
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';

function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// A value as key=value shows it: bare when unambiguous, else JSON (quoted strings, compact objects).
function show(v: unknown): string {
  if (typeof v === 'string') return v !== '' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v) ?? String(v);
}

interface SerializedError {
  type?: string;
  message?: string;
  stack?: string;
  code?: string;
}

function isSerializedError(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && typeof (v as SerializedError).message === 'string' && ('stack' in v || 'type' in v);
}

/**
 * One pino record as a readable line: time, level, controller, namespace/name, message, then the
 * other fields as key=value. An error object (pino's `err`) is shown by its type, code and message,
 * its stack indented on the lines below.
 */
export function formatLine(record: Record<string, unknown>, opts: TextFormatOptions = {}): string {
  const paint = (code: string, s: string) => (opts.color ? `${code}${s}${RESET}` : s);
  const level = typeof record.level === 'string' ? record.level : String(record.level ?? '');
  const parts: string[] = [];
  if (typeof record.time === 'string') parts.push(paint(DIM, (opts.time ?? localTime)(record.time)));
  parts.push(paint(LEVEL_COLORS[level] ?? '', level.toUpperCase().padEnd(5)));
  if (record.controller !== undefined) parts.push(paint(CYAN, `[${String(record.controller)}]`));
  const hasObject = record.name !== undefined;
  if (hasObject)
    parts.push(paint(BOLD, record.namespace !== undefined ? `${String(record.namespace)}/${String(record.name)}` : String(record.name)));
  if (record.msg !== undefined && record.msg !== '') parts.push(String(record.msg));
  const below: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (FIXED.has(k)) continue;
    // The kind is the object's, already named by the controller and namespace/name columns.
    if (k === 'kind' && hasObject) continue;
    if (isSerializedError(v)) {
      const head = [v.type, v.code ? `[${v.code}]` : undefined].filter(Boolean).join(' ');
      parts.push(`${k}=${show(head ? `${head}: ${v.message}` : v.message)}`);
      const stack = v.stack
        ?.split('\n')
        .slice(1)
        .map((l) => `    ${l.trim()}`);
      if (stack?.length) below.push(...stack);
      continue;
    }
    parts.push(`${paint(DIM, `${k}=`)}${show(v)}`);
  }
  // A namespace without a name (a namespace-wide line) is a field like any other.
  if (!hasObject && record.namespace !== undefined) parts.push(`${paint(DIM, 'namespace=')}${show(record.namespace)}`);
  const line = parts.join('  ');
  return below.length ? `${line}\n${paint(DIM, below.join('\n'))}` : line;
}

/**
 * A pino destination that writes each JSON line pino hands it as a readable line to `out` (a
 * synchronous stdout in `createLogger`). A line that is not JSON is passed on as it is.
 */
export function textDestination(out: { write(s: string): unknown }, opts: TextFormatOptions = {}): DestinationStream {
  return {
    write(line: string) {
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        out.write(line);
        return;
      }
      out.write(typeof record === 'object' && record !== null ? `${formatLine(record as Record<string, unknown>, opts)}\n` : line);
    },
  };
}

/** Whether `format` is a log format. */
export function isLogFormat(format: string): format is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(format);
}

/** The format `auto` stands for: text when stdout is a terminal, JSON for pipes, files and log collectors. */
export function resolveLogFormat(format: LogFormat, stdoutIsTTY: boolean): 'text' | 'json' {
  if (format !== 'auto') return format;
  return stdoutIsTTY ? 'text' : 'json';
}
