// A project module with one single-version CRD and no webhooks, for manifests.test.ts.
import type { ControllerSpec } from '../../../controller/builder.js';
import { GadgetV1 } from './gadgets.js';

export const controllers: ControllerSpec[] = [];
export const resources = [GadgetV1];
