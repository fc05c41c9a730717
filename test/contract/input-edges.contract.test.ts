import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { JSON_MAX_DEPTH, type JsonObject } from '../../src/domain/json.js';
import { availableBackends, useBackend } from '../support/backends.js';

/**
 * Inputs at the edges of what JavaScript and PostgreSQL can both hold: each is accepted
 * with the same meaning on every store, or rejected on every store with a ValidationError
 * naming the field, with nothing written.
 */

const nested = (levels: number): JsonObject => {
  let value: JsonObject = {};
  for (let level = 1; level < levels; level++) value = { child: value };
  return value;
};

for (const factory of availableBackends()) {
  describe(`input edges on ${factory.name}`, () => {
    const backend = useBackend(factory);

    it('rejects a sparse array in JSON metadata, naming the hole, and writes nothing', async () => {
      // eslint-disable-next-line no-sparse-arrays
      const metadata = { list: [, 1] } as unknown as JsonObject;
      const error = await backend.current.graph
        .createContributor({ name: 'sparse', metadata })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('metadata.list[0]');
      expect(await backend.current.graph.listContributors()).toEqual([]);
    });

    it(`accepts JSON nested ${JSON_MAX_DEPTH} levels deep and rejects one level more (thousands of levels too) with the field named`, async () => {
      const deepest = await backend.current.graph.createContributor({ name: 'deep', metadata: nested(JSON_MAX_DEPTH) });
      expect(await backend.current.graph.getContributor(deepest.id)).toEqual(deepest);
      for (const levels of [JSON_MAX_DEPTH + 1, 5000]) {
        const error = await backend.current.graph
          .createAsset({ name: 'too deep', assetType: 'code', metadata: nested(levels) })
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toMatch(/^metadata(\.child)+$/);
      }
      expect(await backend.current.graph.listAssets()).toEqual([]);
    });

    it('rejects a listTasks offset past 2^53 - 1 with a ValidationError naming offset', async () => {
      for (const offset of [2 ** 63, Number.MAX_SAFE_INTEGER + 1]) {
        await expect(backend.current.tasks.listTasks({ offset })).rejects.toMatchObject({
          name: 'ValidationError',
          field: 'offset',
        });
      }
      expect(await backend.current.tasks.listTasks({ offset: Number.MAX_SAFE_INTEGER })).toEqual([]);
    });

    it('stores -0 in an integer field as 0', async () => {
      const task = await backend.current.tasks.createTask({
        direction: 'd',
        taskType: 'impl',
        model: 'm',
        command: 'c',
      });
      await backend.current.tasks.updateTask(task.id, { progressPct: -0 });
      expect(Object.is((await backend.current.tasks.getTask(task.id))!.progressPct, 0)).toBe(true);
      const project = await backend.current.graph.upsertProject({ ecosystem: 'npm', name: 'zero' });
      await backend.current.graph.putRecord('projects', { ...project, dependencyCount: -0 });
      expect(Object.is((await backend.current.graph.getProject(project))!.dependencyCount, 0)).toBe(true);
    });

    it('returns JSON keys in code point order, integer-like keys first in numeric order, as JavaScript enumerates them', async () => {
      const c = await backend.current.graph.createContributor({
        name: 'keys',
        metadata: { b: 1, '10': 2, a: 3, '2': 4, '01': 5 },
      });
      const stored = await backend.current.graph.getContributor(c.id);
      expect(Object.keys(stored!.metadata)).toEqual(['2', '10', '01', 'a', 'b']);
      expect(JSON.stringify(stored!.metadata)).toBe(JSON.stringify(c.metadata));
    });
  });
}
