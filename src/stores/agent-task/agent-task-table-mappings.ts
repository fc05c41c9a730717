import { TableMapping, timestampColumns } from '../../postgres/table-mapping.js';
import type { AgentTask } from './agent-task-model.js';

/** The agent_tasks table in PostgreSQL (schema/001_initial_schema.sql), column for column. */
export const AGENT_TASKS = new TableMapping<AgentTask>(
  'agent_tasks',
  [
    { column: 'id', field: 'id', type: 'text' },
    { column: 'direction', field: 'direction', type: 'text' },
    { column: 'task_type', field: 'taskType', type: 'task_type' },
    { column: 'status', field: 'status', type: 'task_status' },
    { column: 'model', field: 'model', type: 'text' },
    { column: 'command', field: 'command', type: 'text' },
    { column: 'output', field: 'output', type: 'text' },
    { column: 'context', field: 'context', type: 'jsonb' },
    { column: 'progress_pct', field: 'progressPct', type: 'integer' },
    { column: 'current_step', field: 'currentStep', type: 'text' },
    { column: 'decision_prompt', field: 'decisionPrompt', type: 'text' },
    { column: 'decision', field: 'decision', type: 'text' },
    { column: 'tier', field: 'tier', type: 'text' },
    ...timestampColumns('startedAt', 'createdAt', 'updatedAt'),
  ],
  ['id'],
);
