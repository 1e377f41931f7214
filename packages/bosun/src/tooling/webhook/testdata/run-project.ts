// A project module for `bosun run --from`: the Gadget webhooks and versions of the group the
// test names in $BOSUN_TEST_GADGET_GROUP (so the test and the child process agree on it).
import { controller } from '../../../controller/builder.js';
import type { ProjectModule } from '../../cli/project.js';
import { gadgetApi } from './gadgets.js';

const group = process.env.BOSUN_TEST_GADGET_GROUP;
if (!group) throw new Error('set BOSUN_TEST_GADGET_GROUP to the test group');
const api = gadgetApi(group);

/**
 * The operators `bosun run` may start: one whose controller watches Gadgets at v2, the version not stored, so its
 * cache's list goes through the conversion webhook the same process serves.
 */
export const operators: ProjectModule['operators'] = {
  gadgets: {
    description: 'serves the Gadget webhooks',
    controllers: () => [
      controller('gadgets')
        .for(api.v2)
        .reconcile(async () => {}),
    ],
  },
};
/** The webhooks `bosun run` serves and registers. */
export const webhooks: ProjectModule['webhooks'] = [api.size, api.defaults];
/** The Gadget versions, converted by the same server. */
export const versions: ProjectModule['versions'] = [api.versions];
/** One registration per test group. */
export const prefix = `gadgets-${group.split('.')[0]}`;
