import { bosunError } from '../errors.js';

/** A controller declaration that cannot run: the builder was completed before it named what it reconciles. */
export class ControllerDeclarationError extends bosunError('BOSUN_CONTROLLER_DECLARATION') {
  override readonly name = 'ControllerDeclarationError';
}

/** An owner reference was asked for an owner without the `metadata.name` and `metadata.uid` the API gives it. */
export class OwnerMetadataError extends bosunError('BOSUN_OWNER_METADATA') {
  override readonly name = 'OwnerMetadataError';
}
