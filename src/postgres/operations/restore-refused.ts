import { RequestRefusedError } from '../../domain/errors.js';

/** A restore that did not go ahead (a backup that fails its checks, a target in use or holding data); the target database is as it was. */
export class RestoreRefusedError extends RequestRefusedError {}
