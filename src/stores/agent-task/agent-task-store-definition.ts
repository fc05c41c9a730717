import { decideTask, decideTaskUpdate, type TaskUpdateResult } from './agent-task-model.js';
import type { AgentTaskStore } from './agent-task-store.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from './agent-task-records.js';
import { MemoryAgentTaskStore } from './memory-agent-task-store.js';
import { mappedEntity } from '../../postgres/entity-sql.js';
import { PostgresAgentTaskStore } from './postgres-agent-task-store.js';
import { AGENT_TASKS } from './agent-task-table-mappings.js';
import type { StoreDescription } from '../../ports/store-description.js';
import type { StoreDefinition } from '../store-definition.js';

const task = (id: string) => `task:${id}`;

export const AGENT_TASK_STORE_METHODS: StoreDescription<AgentTaskStore> = {
  createTask: {
    kind: 'write',
    key: (input) => task(input.id!),
    decide: (context, input) => [decideTask(input, context)],
    affects: ([input]) => [{ entity: 'agent_tasks', key: [input.id!] }],
  },
  getTask: { kind: 'read', key: task },
  updateTask: {
    kind: 'write',
    key: task,
    decide: (context, id, patch, options) => {
      const update = decideTaskUpdate(id, patch, options, context);
      return [
        update.id,
        update.patch,
        { at: update.at, ...(update.expectedStatus ? { expectedStatus: update.expectedStatus } : {}) },
      ];
    },
    // The authoritative side decided the compare-and-set: the other side copies the outcome.
    affects: ([id], result) => ((result as TaskUpdateResult).updated ? [{ entity: 'agent_tasks', key: [id] }] : []),
  },
  listTasks: { kind: 'read' },
  attention: { kind: 'read' },
  countByStatus: { kind: 'read' },
};

/** The AgentTaskStore: agent tasks and their lifecycle. */
export const AGENT_TASK_DEFINITION: StoreDefinition<AgentTaskStore, AgentTaskRecords> = {
  name: 'tasks',
  methods: AGENT_TASK_STORE_METHODS,
  catalog: AGENT_TASK_ENTITIES,
  postgres: { agent_tasks: mappedEntity(AGENT_TASKS) },
  createMemory: (options) => new MemoryAgentTaskStore(options),
  createPostgres: (db, options) => new PostgresAgentTaskStore(db, options),
};
