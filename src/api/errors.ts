import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { EvidenceRefusedError } from '../runtime/evidence-gate.js';
import {
  ConflictError,
  DualWriteError,
  NotFoundError,
  RequestRefusedError,
  StoreError,
  TransitionError,
  UnavailableError,
} from '../domain/errors.js';
import { describeFailure, failureText } from '../dualwrite/data-error.js';
import { redactConnectionStrings, redactText } from '../postgres/redact.js';

/** The body of every error response: what went wrong and, for bad input, which field. */
export interface ErrorBody {
  readonly error: string;
  readonly field?: string;
  readonly [detail: string]: unknown;
}

/** An answer the API decides itself (401, a failed compare-and-set, a skipped verification). */
export class ApiError extends DualWriteError {
  constructor(
    readonly statusCode: number,
    message: string,
    /** Merged into the response body (e.g. the task as stored now). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Seconds a client should wait after a 503: the mirror's circuit probes an unreachable
 * PostgreSQL once a second, so the next try after that sees whether it answers again.
 */
const RETRY_AFTER_SECONDS = 1;

interface SchemaErrorEntry {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/**
 * The one error handler: bad input is 400 naming the field, a missing record 404, a lost
 * race or forbidden transition 409, an unreachable PostgreSQL 503 with Retry-After, and
 * anything else 500 saying what failed (the error's message, SQLSTATE and constraint), with
 * connection-string passwords and `secrets` (the API's tokens) redacted; logged in full.
 */
export function sendError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
  secrets: readonly string[] = [],
): FastifyReply {
  const { status, body } = describeError(error, secrets);
  if (status >= 500) {
    if (status === 503) request.log.warn({ err: error }, 'dependency unavailable');
    else request.log.error({ err: error }, 'request failed');
  }
  if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  return reply.status(status).send(body);
}

/** The error handler of an API whose tokens must never appear in an answer (fastify's setErrorHandler). */
export function errorHandler(
  secrets: readonly (string | undefined)[],
): (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  const known = secrets.filter((secret): secret is string => typeof secret === 'string' && secret !== '');
  return (error, request, reply) => sendError(error, request, reply, known);
}

/** Status and body for an error. */
function describeError(error: unknown, secrets: readonly string[]): { status: number; body: ErrorBody } {
  const validation = (error as { validation?: readonly SchemaErrorEntry[] }).validation;
  if (Array.isArray(validation) && validation.length > 0) {
    return {
      status: 400,
      body: schemaErrorBody(validation[0]!, (error as { validationContext?: string }).validationContext ?? 'request'),
    };
  }
  if (error instanceof ApiError) return { status: error.statusCode, body: { error: error.message, ...error.details } };
  if (error instanceof StoreError)
    return { status: storeErrorStatus(error), body: { error: error.message, field: error.field } };
  if (error instanceof UnavailableError)
    return { status: 503, body: { error: `${error.dependency} is unavailable; retry later` } };
  // An advance the evidence does not support: which checks failed, with their figures.
  if (error instanceof EvidenceRefusedError)
    return { status: 409, body: { error: error.message, checks: error.verdict.checks } };
  // Any other refusal (flags owned by Unleash or the application, a safety rule or its barrier): nothing was left behind.
  if (error instanceof RequestRefusedError) return { status: 409, body: { error: error.message } };
  // Fastify's own client errors: malformed JSON, unsupported media type, body too large (its body parser's codes: FST_ERR_CTP_*).
  const { statusCode, code } = error as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const aboutBody = typeof code === 'string' && code.startsWith('FST_ERR_CTP_');
    return { status: statusCode, body: { error: (error as Error).message, ...(aboutBody ? { field: 'body' } : {}) } };
  }
  return { status: 500, body: internalErrorBody(error, secrets) };
}

/**
 * What an unexpected error says, so a caller (the CLI) can tell an operator what failed
 * instead of a bare "internal error": its message and, from PostgreSQL, SQLSTATE, constraint
 * and detail. Whatever leaves the process is redacted: connection strings lose their
 * password, and the API's tokens are cut out wherever they appear.
 */
function internalErrorBody(error: unknown, secrets: readonly string[]): ErrorBody {
  const failure = describeFailure(error);
  const { code, constraint, detail } = failure;
  const redact = (text: string) => redactText(redactConnectionStrings(text), secrets);
  return {
    // The whole of it in `error`, which is what a client prints; the SQL fields also apart, for programs.
    error: failure.message
      ? redact(failureText(failure))
      : 'internal error (no message; the process log has the stack)',
    ...(code ? { code } : {}),
    ...(constraint ? { constraint: redact(constraint) } : {}),
    ...(detail ? { detail: redact(detail) } : {}),
  };
}

/** A missing record 404, a taken key or forbidden transition 409, anything else about the input (ValidationError) 400. */
function storeErrorStatus(error: StoreError): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError || error instanceof TransitionError) return 409;
  return 400;
}

/**
 * A JSON-schema failure as `{ error, field }`, the field spelled as the stores spell theirs
 * (`to.ecosystem`, `limit`), so a client handles both kinds of 400 alike.
 */
function schemaErrorBody(entry: SchemaErrorEntry, part: string): ErrorBody {
  const path = entry.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
  const { missingProperty, additionalProperty, allowedValues } = entry.params;
  if (typeof missingProperty === 'string') return fieldError([...path, missingProperty], part, 'required');
  if (typeof additionalProperty === 'string')
    return fieldError([...path, additionalProperty], part, 'not a field of this request');
  const problem = Array.isArray(allowedValues)
    ? `must be one of ${allowedValues.join(', ')}`
    : (entry.message ?? 'is invalid');
  return fieldError(path, part, problem);
}

function fieldError(path: readonly string[], part: string, problem: string): ErrorBody {
  const field = path.length > 0 ? path.join('.') : part;
  return { error: `${field}: ${problem}`, field };
}
