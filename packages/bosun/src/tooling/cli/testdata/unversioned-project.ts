// A project module listing two versions of one CRD without `versions`, for manifests.test.ts.
import type { ControllerSpec } from '../../../controller/builder.js';
import { GadgetV1, GadgetV2 } from './gadgets.js';

export const controllers: ControllerSpec[] = [];
export const resources = [GadgetV1, GadgetV2];
