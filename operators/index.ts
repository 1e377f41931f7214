// The operators `bosun run` knows, by name.
import type { ControllerSpec } from 'bosun';
import { messageHandlers } from './message/handlers.js';
import { messageController } from './message/reconciler.js';

/** Each runnable operator: its controllers and a one-line description for `bosun run --help`. */
export const OPERATORS: Record<string, { description: string; controllers: () => ControllerSpec[] }> = {
  message: { description: 'Message → one Pod printing its text (reconcile style)', controllers: () => [messageController] },
  'message-handlers': { description: 'the same Message operator in the kopf style (handlers)', controllers: () => [messageHandlers] },
};
