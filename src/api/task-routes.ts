import type { FastifyInstance } from 'fastify';
import type { TaskInput, TaskListQuery, TaskPatch, TaskUpdateOptions } from '../stores/agent-task/agent-task-model.js';
import type { AgentTaskStore } from '../stores/agent-task/agent-task-store.js';
import { ApiError } from './errors.js';
import { createRoute, getByIdRoute, items, listRoute } from './route-helpers.js';
import {
  ID_PARAMS,
  listOf,
  routeSchema,
  TASK,
  TASK_BODY,
  TASK_COUNTS,
  TASK_LIST_QUERY,
  TASK_PATCH_BODY,
} from './schemas.js';

/**
 * Agent tasks, each route one call of the AgentTaskStore interface. PATCH applies the
 * lifecycle; with `expectedStatus` it is a compare-and-set whose mismatch is a 409 carrying
 * the task as stored now (the store wrote nothing), as a forbidden transition is.
 */
export function taskRoutes(app: FastifyInstance, tasks: AgentTaskStore): void {
  createRoute<TaskInput>(app, '/tasks', { body: TASK_BODY, response: TASK }, (input) => tasks.createTask(input));
  // Static segments win over /tasks/:id in fastify's router, whatever the order of registration.
  listRoute(app, '/tasks/attention', TASK, (limit) => tasks.attention(limit));
  app.get('/tasks/counts', { schema: routeSchema({ response: { 200: TASK_COUNTS } }) }, async () =>
    tasks.countByStatus(),
  );
  getByIdRoute(app, '/tasks/:id', TASK, (id) => tasks.getTask(id));
  app.get<{ Querystring: TaskListQuery }>(
    '/tasks',
    { schema: routeSchema({ querystring: TASK_LIST_QUERY, response: { 200: listOf(TASK) } }) },
    async (request) => items(await tasks.listTasks(request.query)),
  );
  app.patch<{ Params: { id: string }; Body: TaskPatch & TaskUpdateOptions }>(
    '/tasks/:id',
    { schema: routeSchema({ params: ID_PARAMS, body: TASK_PATCH_BODY, response: { 200: TASK } }) },
    async (request) => {
      const { expectedStatus, at, ...patch } = request.body;
      const result = await tasks.updateTask(request.params.id, patch, { expectedStatus, at });
      if (!result.updated) {
        throw new ApiError(
          409,
          `expectedStatus: the task is ${result.task.status}, not ${expectedStatus}; nothing was changed`,
          { field: 'expectedStatus', task: result.task },
        );
      }
      return result.task;
    },
  );
}
