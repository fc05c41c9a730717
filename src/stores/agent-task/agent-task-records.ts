import { ValidationError } from '../../domain/errors.js';
import { canonicalJsonObject } from '../../domain/json.js';
import { nonNegativeInteger } from '../../domain/limits.js';
import { recordObject, type EntityCatalog } from '../../domain/records.js';
import { oneOf, optionalText, requireText } from '../../domain/text.js';
import { canonicalTimestamp, optionalTimestamp } from '../../domain/time.js';
import { TASK_STATUSES, TASK_TYPES, taskId, type AgentTask } from './agent-task-model.js';

/** The agent-task store's records, by entity. */
export interface AgentTaskRecords {
  agent_tasks: AgentTask;
}

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
