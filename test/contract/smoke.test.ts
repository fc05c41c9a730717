import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../support/backends.js';

for (const factory of availableBackends()) {
  describe(`smoke on ${factory.name}`, () => {
    const backend = useBackend(factory);
    it('stores a contribution and totals it', async () => {
      const { graph } = backend.current;
      const c = await graph.createContributor({ name: 'Ada', metadata: { b: 1, a: { é: '日本' } } });
      const a = await graph.createAsset({ name: 'Doc', assetType: 'code' });
      await graph.createContribution({ contributorId: c.id, assetId: a.id, costAmount: '0.10', coherenceScore: 0.5 });
      await graph.createContribution({ contributorId: c.id, assetId: a.id, costAmount: 0.2, coherenceScore: '1' });
      expect((await graph.getAsset(a.id))!.totalCost).toBe('0.30');
      expect(await graph.getContributor(c.id)).toEqual(c);
      await graph.upsertProject({ ecosystem: 'NPM', name: 'React', description: '100% Fun_stuff' });
      await graph.upsertProject({ ecosystem: 'npm', name: 'left-pad' });
      await graph.addDependency({ ecosystem: 'npm', name: 'react' }, { ecosystem: 'npm', name: 'LEFT-PAD' });
      expect((await graph.getProject({ ecosystem: 'npm', name: 'react' }))!.dependencyCount).toBe(1);
      expect((await graph.search('%')).map((p) => p.name)).toEqual(['react']);
      expect(await graph.countDependents({ ecosystem: 'npm', name: 'left-pad' })).toBe(1);
      const t = await backend.current.tasks.createTask({
        direction: 'do it',
        taskType: 'impl',
        model: 'm',
        command: 'c',
      });
      const r = await backend.current.tasks.updateTask(t.id, { status: 'running' });
      expect(r.updated).toBe(true);
      expect(await backend.current.tasks.countByStatus()).toEqual({
        pending: 0,
        running: 1,
        completed: 0,
        failed: 0,
        needs_decision: 0,
      });
    });
  });
}
