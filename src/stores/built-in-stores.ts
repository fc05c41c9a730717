import { AGENT_TASK_DEFINITION } from './agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from './graph/graph-store-definition.js';
import type { AnyStoreDefinition } from './store-definition.js';

/** The stores this project ships, in the order the runtime assembles, backfills and verifies them. */
export const BUILT_IN_STORES: readonly AnyStoreDefinition[] = [GRAPH_DEFINITION, AGENT_TASK_DEFINITION];
