import { TASK_STATUSES, TASK_TYPES } from '../stores/agent-task/agent-task-model.js';
import { STAGES } from '../ports/stage.js';

/**
 * JSON schemas of the API. Input schemas check shape and types (and refuse unknown
 * fields); the domain rules (UUID form, lengths, decimals, timestamps, JSON limits, page
 * limits) stay in the stores, which apply them identically on both sides, so no rule is
 * written twice. Response schemas document the records and let fastify serialize them fast.
 */

type Schema = Readonly<Record<string, unknown>>;

const text = { type: 'string' } as const;
const nullableText = { type: ['string', 'null'] } as const;
const integer = { type: 'integer' } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
/** A JSON object (metadata, context); null stores an empty one. */
const jsonObject = { type: 'object', additionalProperties: true } as const;
const nullableJsonObject = { type: ['object', 'null'], additionalProperties: true } as const;
/** An exact decimal: a string ("12.30") or a JSON number. */
const decimal = { type: ['string', 'number'] } as const;
const enumOf = (values: readonly string[]) => ({ type: 'string', enum: values }) as const;

/** An object with exactly these properties (none unknown); `required` lists the mandatory ones. */
export function strictObject(properties: Record<string, Schema>, required: readonly string[] = []): Schema {
  return { type: 'object', properties, required, additionalProperties: false };
}

/** Responses: the fields listed are the ones serialized. */
function record(properties: Record<string, Schema>): Schema {
  return { type: 'object', properties };
}

export function listOf(item: Schema): Schema {
  return record({ items: { type: 'array', items: item } });
}

// Inputs.

export const NO_PARAMS = strictObject({});
export const NO_QUERY = strictObject({});
/** An operator action that may say why (verify, repair, outbox replay): no body (fastify validates it as null), `{}` or `{ reason }`. */
export const REASON_BODY: Schema = {
  type: ['object', 'null'],
  properties: { reason: { type: 'string', pattern: '\\S' } },
  additionalProperties: false,
};
/** Probes and scrapers may add query parameters of their own; they are ignored. */
export const ANY_QUERY: Schema = { type: 'object' };

export const PROJECT_PARAMS = strictObject({ ecosystem: text, name: text }, ['ecosystem', 'name']);
export const ID_PARAMS = strictObject({ id: text }, ['id']);

export const LIMIT_QUERY = strictObject({ limit: integer });
export const SEARCH_QUERY = strictObject({ q: text, limit: integer }, ['q']);
export const TASK_LIST_QUERY = strictObject({
  status: enumOf(TASK_STATUSES),
  taskType: enumOf(TASK_TYPES),
  limit: integer,
  offset: integer,
});

export const PROJECT_BODY = strictObject({
  description: nullableText,
  homepageUrl: nullableText,
  repositoryUrl: nullableText,
  at: text,
});
export const DEPENDENCY_BODY = strictObject(
  { to: strictObject({ ecosystem: text, name: text }, ['ecosystem', 'name']), at: text },
  ['to'],
);
export const CONTRIBUTOR_BODY = strictObject(
  {
    id: text,
    name: text,
    email: nullableText,
    githubUsername: nullableText,
    walletAddress: nullableText,
    metadata: nullableJsonObject,
    at: text,
  },
  ['name'],
);
export const ASSET_BODY = strictObject(
  { id: text, name: text, description: nullableText, assetType: text, metadata: nullableJsonObject, at: text },
  ['name', 'assetType'],
);
export const CONTRIBUTION_BODY = strictObject(
  {
    id: text,
    contributorId: text,
    assetId: text,
    costAmount: decimal,
    coherenceScore: decimal,
    metadata: nullableJsonObject,
    timestamp: text,
  },
  ['contributorId', 'assetId', 'costAmount', 'coherenceScore'],
);
export const TASK_BODY = strictObject(
  {
    id: text,
    direction: text,
    taskType: enumOf(TASK_TYPES),
    model: text,
    command: text,
    context: nullableJsonObject,
    tier: nullableText,
    at: text,
  },
  ['direction', 'taskType', 'model', 'command'],
);
/** A task patch, plus `expectedStatus` (compare-and-set) and `at` (the update's time). */
export const TASK_PATCH_BODY = strictObject({
  status: enumOf(TASK_STATUSES),
  output: nullableText,
  progressPct: nullableInteger,
  currentStep: nullableText,
  decisionPrompt: nullableText,
  decision: nullableText,
  context: nullableJsonObject,
  expectedStatus: enumOf(TASK_STATUSES),
  at: text,
});

/** A stage change: `reason` is required and kept with the flags; `percent` is the read percentage (default 0). */
export const STAGE_BODY = strictObject(
  {
    stage: enumOf(STAGES),
    percent: { type: 'integer', minimum: 0, maximum: 100 },
    reason: { type: 'string', pattern: '\\S' },
    force: { type: 'boolean' },
    allowUnavailable: { type: 'boolean' },
  },
  ['stage', 'reason'],
);

/** An operator's repair: why, and how many rows it may delete from the side that holds them. */
export const REPAIR_BODY = strictObject(
  { reason: { type: 'string', pattern: '\\S' }, allowDeletes: { type: 'integer', minimum: 0 } },
  ['reason'],
);

export const REPAIR_UNDO_BODY = strictObject(
  {
    runId: { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' },
    reason: { type: 'string', pattern: '\\S' },
  },
  ['runId', 'reason'],
);

/** A resync: toward PostgreSQL (in dual-write, the default) or toward memory (in postgres-primary). */
export const RESYNC_BODY = strictObject(
  {
    reason: { type: 'string', pattern: '\\S' },
    to: enumOf(['postgres', 'memory']),
    allowDeletes: { type: 'integer', minimum: 0 },
  },
  ['reason'],
);

export const GATE_QUERY = strictObject(
  { stage: enumOf(STAGES), percent: { type: 'integer', minimum: 0, maximum: 100 } },
  ['stage'],
);

export const AUDIT_QUERY = strictObject(
  { limit: { type: 'integer', minimum: 1, maximum: 1000 }, action: text, resourceType: text },
  [],
);

export const JOBS_QUERY = strictObject({ limit: { type: 'integer', minimum: 1, maximum: 1000 }, task: text }, []);

// Responses.

const projectRef = record({ ecosystem: text, name: text });
export const PROJECT = record({
  ecosystem: text,
  name: text,
  description: nullableText,
  homepageUrl: nullableText,
  repositoryUrl: nullableText,
  dependencyCount: integer,
  createdAt: text,
  updatedAt: text,
});
export const DEPENDENCY_EDGE = record({ from: projectRef, to: projectRef, createdAt: text });
export const CONTRIBUTOR = record({
  id: text,
  name: text,
  email: nullableText,
  githubUsername: nullableText,
  walletAddress: nullableText,
  metadata: jsonObject,
  createdAt: text,
  updatedAt: text,
});
export const ASSET = record({
  id: text,
  name: text,
  description: nullableText,
  assetType: text,
  totalCost: text,
  metadata: jsonObject,
  createdAt: text,
  updatedAt: text,
});
export const CONTRIBUTION = record({
  id: text,
  contributorId: text,
  assetId: text,
  costAmount: text,
  coherenceScore: text,
  metadata: jsonObject,
  timestamp: text,
});
export const TASK = record({
  id: text,
  direction: text,
  taskType: text,
  status: text,
  model: text,
  command: text,
  output: nullableText,
  context: jsonObject,
  progressPct: nullableInteger,
  currentStep: nullableText,
  decisionPrompt: nullableText,
  decision: nullableText,
  tier: nullableText,
  startedAt: nullableText,
  createdAt: text,
  updatedAt: text,
});
export const COUNT = record({ count: integer });
export const TASK_COUNTS = record(Object.fromEntries(TASK_STATUSES.map((status) => [status, integer])));

/**
 * A route's schema with params and query string always present (left out: none taken).
 * A body schema is given on the routes that take a body (POST, PUT, PATCH; REASON_BODY for
 * operator actions): fastify never reads a GET body and refuses a schema for one.
 * `response` maps status codes to response schemas.
 */
export function routeSchema(parts: {
  params?: Schema;
  querystring?: Schema;
  body?: Schema;
  response?: Record<number, Schema>;
}): Schema {
  return {
    params: parts.params ?? NO_PARAMS,
    querystring: parts.querystring ?? NO_QUERY,
    ...(parts.body ? { body: parts.body } : {}),
    ...(parts.response ? { response: parts.response } : {}),
  };
}
