// The Message operator in the kopf style: handlers for causes, on the same runtime.
import { Pod as PodType, handlers, type HandlerArgs } from 'bosun';
import { MessageResource, type Message } from './resource.js';
import { POD_LABELS, desiredPod, podName, printsCurrentText, statusFromPod, type Pod } from './pod.js';

async function ensurePod({ obj, ctx }: HandlerArgs<Message>): Promise<void> {
  ctx.log.info('Reconciling Message');
  const pod = ctx.cache.get<Pod>(PodType, obj.metadata.namespace, podName(obj));
  if (pod && (printsCurrentText(pod, obj) || pod.metadata.deletionTimestamp)) return; // converged, or already going
  if (pod) {
    await ctx.deleteIfExists(PodType, pod, { preconditionUid: true });
    ctx.events.normal(obj, 'ReplacingPod', `Text changed; replacing Pod ${podName(obj)}`);
    return; // the Pod's deletion calls the owned-Pod handler below, which creates the new one
  }
  await ctx.applyChild(PodType, desiredPod(obj));
  ctx.events.normal(obj, 'CreatedPod', `Created Pod ${podName(obj)}`);
}

/** The Message operator as kopf-style handlers. */
export const messageHandlers = handlers<Message>('message-handlers', MessageResource)
  .onCreate(ensurePod)
  .onResume(ensurePod)
  .onUpdate({ field: 'spec.text' }, ensurePod)
  .onOwned<Pod>(
    PodType,
    async (args) => {
      const { obj, child, ctx } = args;
      if (!child || !printsCurrentText(child, obj)) {
        await ensurePod(args);
        if (!child)
          await ctx.updateStatus(MessageResource, obj, {
            fields: { phase: 'Pending', podName: podName(obj) },
            conditions: [{ type: 'Ready', status: 'False', reason: 'PodReplacing', message: `Replacing Pod ${podName(obj)}` }],
          });
        return;
      }
      const s = statusFromPod(child);
      const changed = await ctx.updateStatus(MessageResource, obj, {
        fields: { phase: s.phase, podName: podName(obj) },
        conditions: [{ type: 'Ready', ...s.ready }],
      });
      if (changed && s.failed) ctx.events.warning(obj, s.ready.reason, s.ready.message);
    },
    { labels: POD_LABELS },
  )
  .build();
