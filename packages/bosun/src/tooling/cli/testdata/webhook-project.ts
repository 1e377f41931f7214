// A project module with versions and webhooks, for manifests.test.ts.
import type { ControllerSpec } from '../../../controller/builder.js';
import { defaultsWebhook, gadgetVersions, GadgetV1, GadgetV2, sizeWebhook } from './gadgets.js';

export const controllers: ControllerSpec[] = [];
export const resources = [GadgetV1, GadgetV2];
export const versions = [gadgetVersions];
export const webhooks = [sizeWebhook, defaultsWebhook];
export const prefix = 'bosun';
export const namespace = 'bosun-system';
