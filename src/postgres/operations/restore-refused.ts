/** A restore that did not go ahead (a backup that fails its checks, a target in use or holding data); the target database is as it was. */
export class RestoreRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefused';
  }
}
