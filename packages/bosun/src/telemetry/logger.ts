import { destination, pino, stdTimeFunctions, type DestinationStream, type Level, type Logger as PinoLogger } from 'pino';
import { bosunError } from '../errors.js';
import { LOG_FORMATS, isLogFormat, resolveLogFormat, textDestination, type LogFormat } from './format.js';

/** The structured logger every bosun component takes: a pino logger writing one JSON object per line. */
export type Logger = PinoLogger;

/** The log levels a user can choose: pino's levels plus 'silent'. */
export type LogLevel = Level | 'silent';

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** Minimum level; default 'info', or $BOSUN_LOG_LEVEL when set. */
  level?: LogLevel;
  /** `--verbose`: log at debug; ignored when `level` is given explicitly. */
  verbose?: boolean;
  /** Logged as `name` on every line, e.g. the operator's name. */
  name?: string;
  /** Where lines go (default stdout); tests pass a stream to capture them. */
  destination?: DestinationStream;
  /**
   * `--log-format`: readable `text` lines or `json`; default $BOSUN_LOG_FORMAT, else `auto`: text when
   * the lines go to a terminal, JSON otherwise (and always to a `destination` given here).
   */
  format?: LogFormat;
}

/** Raised when a log level name is not one pino knows. */
export class InvalidLogLevelError extends bosunError('BOSUN_LOG_LEVEL') {
  override readonly name = 'InvalidLogLevelError';
}

/** Raised when a log format name is not one of LOG_FORMATS. */
export class InvalidLogFormatError extends bosunError('BOSUN_LOG_FORMAT') {
  override readonly name = 'InvalidLogFormatError';
}

const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Creates the root logger: JSON lines with ISO timestamps and level names rather than numbers, shown
 * as readable lines when they go to a terminal (see `format`).
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env.BOSUN_LOG_LEVEL;
  const level = opts.level ?? (opts.verbose ? 'debug' : (envLevel ?? 'info'));
  if (!LEVELS.includes(level)) {
    throw new InvalidLogLevelError(
      `log level '${level}' is unknown; use one of ${LEVELS.join(', ')} (from --log-level or $BOSUN_LOG_LEVEL)`,
    );
  }
  const format = opts.format ?? (process.env.BOSUN_LOG_FORMAT || 'auto');
  if (!isLogFormat(format)) {
    throw new InvalidLogFormatError(
      `log format '${format}' is unknown; use one of ${LOG_FORMATS.join(', ')} (from --log-format or $BOSUN_LOG_FORMAT)`,
    );
  }
  // Synchronous writes: the lines just before a process.exit (lost leadership, fatal errors) must not be lost.
  const out = opts.destination ?? destination({ dest: 1, sync: true });
  const terminal = opts.destination === undefined && process.stdout.isTTY === true;
  const dest = resolveLogFormat(format, terminal) === 'text' ? textDestination(out, { color: terminal && !process.env.NO_COLOR }) : out;
  return pino(
    {
      level,
      name: opts.name,
      // Level names survive log pipelines that don't know pino's numeric levels.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    dest,
  );
}

/** The parts of an object a log line needs to name it; any Kubernetes object fits. */
export interface ObjectRef {
  kind?: string;
  metadata?: { namespace?: string; name?: string };
}

/**
 * A child logger whose every line names the object (`namespace`, `name`, `kind`), so the lines of one
 * reconcile can be found with a single filter.
 */
export function objectLogger(logger: Logger, obj: ObjectRef, fields: Record<string, unknown> = {}): Logger {
  const bindings: Record<string, unknown> = { ...fields };
  if (obj.metadata?.namespace) bindings.namespace = obj.metadata.namespace;
  if (obj.metadata?.name !== undefined) bindings.name = obj.metadata.name;
  if (obj.kind) bindings.kind = obj.kind;
  return logger.child(bindings);
}

/** A logger that drops everything: the default for components constructed without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
