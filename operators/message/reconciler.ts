// The Message operator in the controller-runtime style: one level-based reconcile function.
import { Pod as PodType, controller, type ReconcileContext } from 'bosun';
import { MessageResource, type Message } from './resource.js';
import { POD_LABELS, cachedPod, desiredPod, podName, printsCurrentText, statusFromPod, type Pod } from './pod.js';

/** Makes the world match one Message: exactly one Pod printing its text, and a status mirroring that Pod. */
export async function reconcileMessage(msg: Message, ctx: ReconcileContext): Promise<void> {
  ctx.log.info('Reconciling Message');
  const name = podName(msg);
  const pod = ctx.cache.ownedBy<Pod>(PodType, msg).find((p) => p.metadata.name === name);

  if (pod && !printsCurrentText(pod, msg)) {
    // Pod specs are immutable: a new text means a new Pod. Its deletion event brings us back to create it.
    if (!pod.metadata.deletionTimestamp) {
      await ctx.deleteIfExists(PodType, pod, { preconditionUid: true });
      ctx.events.normal(msg, 'ReplacingPod', `Text changed; replacing Pod ${name}`);
    }
    await ctx.updateStatus(MessageResource, msg, {
      fields: { phase: 'Pending', podName: name },
      conditions: [{ type: 'Ready', status: 'False', reason: 'PodReplacing', message: `Replacing Pod ${name}` }],
    });
    return;
  }
  if (!pod) {
    await ctx.applyChild(PodType, desiredPod(msg));
    ctx.events.normal(msg, 'CreatedPod', `Created Pod ${name}`);
    return;
  }
  const s = statusFromPod(pod);
  const changed = await ctx.updateStatus(MessageResource, msg, {
    fields: { phase: s.phase, podName: name },
    conditions: [{ type: 'Ready', ...s.ready }],
  });
  if (changed && s.failed) ctx.events.warning(msg, s.ready.reason, s.ready.message);
}

/** The Message controller: watches Messages and the Pods they own. */
export const messageController = controller('message')
  .for(MessageResource)
  .owns(PodType, { labels: POD_LABELS, transform: cachedPod })
  .reconcile(async (req, ctx) => {
    const msg = ctx.cache.get<Message>(MessageResource, req.namespace, req.name);
    // Gone or going: garbage collection removes the Pod it owns.
    if (!msg || msg.metadata.deletionTimestamp) return;
    await reconcileMessage(msg, ctx);
  });
