import type { AgentTask } from './agent-task.js';
import { TASK_STATUSES, TASK_TYPES, taskId } from './agent-task.js';
import { oneOf, optionalText, requireText } from './text.js';
import { ValidationError } from './errors.js';
import { assertObject } from './object.js';
import { canonicalJsonObject } from './json.js';
import { nonNegativeInteger } from './limits.js';
import { canonicalTimestamp, optionalTimestamp } from './time.js';

/** A record's key as a tuple of strings; keys order part by part in code point order (compareText). */
export type RecordKey = readonly string[];

/** How one entity's records are keyed and validated, the same for every store. */
export interface EntityDefinition<R> {
  keyOf(record: R): RecordKey;
  /** Validates a record from outside (snapshot file, other store) and returns its canonical form. */
  normalize(raw: unknown): R;
}

export interface AgentTaskRecords {
  agent_tasks: AgentTask;
}

export type EntityCatalog<Records> = { readonly [E in keyof Records]: EntityDefinition<Records[E]> };

export const AGENT_TASK_ENTITIES: EntityCatalog<AgentTaskRecords> = {
  agent_tasks: {
    keyOf: (t) => [t.id],
    normalize: (raw) => {
      const r = recordObject('agent_tasks', raw);
      const progressPct =
        r.progressPct === null || r.progressPct === undefined ? null : nonNegativeInteger('progressPct', r.progressPct);
      if (progressPct !== null && progressPct > 100)
        throw new ValidationError('progressPct', `must be at most 100, got ${progressPct}`);
      return {
        id: taskId('id', r.id),
        direction: requireText('direction', r.direction, { nonBlank: true }),
        taskType: oneOf('taskType', r.taskType, TASK_TYPES),
        status: oneOf('status', r.status, TASK_STATUSES),
        model: requireText('model', r.model, { maxLength: 100 }),
        command: requireText('command', r.command),
        output: optionalText('output', r.output),
        context: canonicalJsonObject('context', r.context),
        progressPct,
        currentStep: optionalText('currentStep', r.currentStep),
        decisionPrompt: optionalText('decisionPrompt', r.decisionPrompt),
        decision: optionalText('decision', r.decision),
        tier: optionalText('tier', r.tier, { maxLength: 50 }),
        startedAt: optionalTimestamp('startedAt', r.startedAt),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
};

/** Entity names of a catalog, in its declared order. */
export function entityNames<Records>(catalog: EntityCatalog<Records>): (keyof Records & string)[] {
  return Object.keys(catalog) as (keyof Records & string)[];
}

/** A raw record of `entity` as an object, or a ValidationError naming the entity. */
export function recordObject(entity: string, raw: unknown): Record<string, unknown> {
  assertObject(entity, raw);
  return raw as Record<string, unknown>;
}

/** The records in first-seen order of their keys, each with the last version given for its key. */
export function lastOfEachKey<R>(records: readonly R[], keyOf: (record: R) => unknown): R[] {
  const byKey = new Map<string, R>();
  for (const record of records) byKey.set(JSON.stringify(keyOf(record)), record);
  return [...byKey.values()];
}
