import { parsePercent, parseStage } from '../../flags/migration-flags.js';
import { ValidationError } from '../domain/errors.js';
import type { MigrationFlags } from '../ports/flags.js';
import type { Principal } from '../postgres/runtime-state/audit-log.js';
import type { ChangeRequest } from './rollout-audit.js';

/** Who asks for an operator action and why; the principal is a name (e.g. "admin-token") or a full Principal. */
export interface OperatorRequest {
  readonly reason: string;
  readonly principal: string | Principal;
  readonly requestId?: string;
  readonly clientIp?: string;
}

/** The flags an operator asks for, validated (a ValidationError names the field). */
export function requestedFlags(
  requested: { readonly stage: unknown; readonly readPercent?: unknown },
  rolloutGroup: string,
): MigrationFlags {
  if (requested.stage === undefined || requested.stage === '') throw new ValidationError('stage', 'required');
  const stage = validated('stage', () => parseStage(requested.stage, 'stage'));
  const readPercent = validated('readPercent', () => parsePercent(requested.readPercent ?? 0, 'readPercent'));
  return { stage, readPercent, rolloutGroup };
}

/** An operator's request with its principal spelled out; the reason is required. */
export function changeRequest(request: OperatorRequest): ChangeRequest {
  if (request.reason.trim() === '') throw new ValidationError('reason', 'say why');
  const principal: Principal =
    typeof request.principal === 'string'
      ? { uid: request.principal, username: request.principal, type: 'service' }
      : request.principal;
  return {
    principal,
    reason: request.reason,
    ...(request.requestId ? { requestId: request.requestId } : {}),
    ...(request.clientIp ? { clientIp: request.clientIp } : {}),
  };
}

/** Runs a flag parser, turning its TypeError into a ValidationError naming `field`. */
function validated<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new ValidationError(field, (error as Error).message);
  }
}
