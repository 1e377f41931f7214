// The Application operator in the controller-runtime style: one level-based reconcile function.
import { Deployment, Service, controller, type ReconcileContext } from 'bosun';
import { ApplicationResource, type Application } from './resource.js';
import {
  MANAGED_LABELS,
  REPLICA_FAILURE,
  desiredDeployment,
  desiredService,
  statusFromDeployment,
  type DeploymentObject,
} from './children.js';

/** Makes the world match one Application: a Deployment and a Service as its spec says, and a status mirroring readiness. */
export async function reconcileApplication(app: Application, ctx: ReconcileContext): Promise<void> {
  ctx.log.info('Reconciling Application');
  const name = app.metadata.name ?? '';
  const ns = app.metadata.namespace;
  // applyChild compares with the cache, so a converged Application costs no request; a missing
  // or hand-edited child is re-applied with force, which takes back the fields someone changed.
  for (const [type, desired] of [
    [Deployment, desiredDeployment(app)],
    [Service, desiredService(app)],
  ] as const) {
    const existed = ctx.cache.get<Deployment | Service>(type, ns, name) !== undefined;
    if (await ctx.applyChild(type, desired)) {
      ctx.events.normal(
        app,
        existed ? `Updated${type.kind}` : `Created${type.kind}`,
        `${existed ? 'Updated' : 'Created'} ${type.kind} ${name}`,
      );
    }
  }
  const dep = ctx.cache.get<DeploymentObject>(Deployment, ns, name);
  const s = statusFromDeployment(app, dep);
  const before = app.status?.conditions?.find((c) => c.type === 'Ready');
  const changed = await ctx.updateStatus(ApplicationResource, app, { fields: s.fields, conditions: [{ type: 'Ready', ...s.ready }] });
  // Once per transition into the failure (or to a new failure message), not on each reconcile the Deployment's status brings.
  if (changed && s.ready.reason === REPLICA_FAILURE && (before?.reason !== REPLICA_FAILURE || before.message !== s.ready.message)) {
    ctx.events.warning(app, REPLICA_FAILURE, s.ready.message);
  }
}

/** The Application controller: watches Applications and the Deployments and Services they own. */
export const applicationController = controller('application')
  .for(ApplicationResource)
  .owns(Deployment, { labels: MANAGED_LABELS })
  .owns(Service, { labels: MANAGED_LABELS })
  .reconcile(async (req, ctx) => {
    const app = ctx.cache.get<Application>(ApplicationResource, req.namespace, req.name);
    // Gone or going: garbage collection removes the children it controller-owns.
    if (!app || app.metadata.deletionTimestamp) return;
    await reconcileApplication(app, ctx);
  });
