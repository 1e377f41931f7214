// Its own module so every part of the control plane can raise it without importing controlplane.ts.
import { bosunError } from '../../errors.js';

/** Raised for a bad state or bad input of a local cluster; the message names the problem and the way out. */
export class ClusterError extends bosunError('BOSUN_CLUSTER') {
  override name = 'ClusterError';
}
