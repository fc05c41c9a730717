import { describe, expect, it } from 'vitest';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { openPglite } from '../support/pglite.js';
import { verifyTarget } from '../../verifier/verify-target.js';
import { verify } from '../../verifier/verify.js';

describe('verify smoke', () => {
  it('finds nothing on equal sides and finds injected drift', async () => {
    const db = await openPglite();
    const memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
    const postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
    for (const write of sampleWrites({ projects: 100 })) {
      await applySampleWrite(write, memory);
      await applySampleWrite(write, postgres);
    }
    const targets = [
      verifyTarget(GRAPH_DEFINITION, memory.graph, postgres.graph),
      verifyTarget(AGENT_TASK_DEFINITION, memory.tasks, postgres.tasks),
    ];
    const clean = await verify(db, targets, { rangeRows: 20, leafRows: 4, graceMs: 0 });
    expect(clean.entities.map((e) => [e.entity, e.differences])).toEqual(
      clean.entities.map((e) => [e.entity, { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 }]),
    );
    expect(clean.consistent).toBe(true);
    // Equal checksums all the way: no row had to be fetched, so JavaScript and PostgreSQL hash alike.
    expect(clean.entities.map((e) => e.rowsFetched)).toEqual(clean.entities.map(() => 0));
    const asset = (await memory.graph.scanRecords('assets', { limit: 1 }))[0]!;
    await db.query(`UPDATE assets SET total_cost = total_cost + 0.01 WHERE id = $1`, [asset.id]);
    const edge = (await memory.graph.scanRecords('dependencies', { limit: 3 }))[2]!;
    await postgres.graph.deleteRecord('dependencies', memory.graph.keyOf('dependencies', edge));
    await db.query(`UPDATE contributors SET metadata = metadata || '{"x": 1}'`);
    const drifted = await verify(db, targets, { rangeRows: 20, leafRows: 4, graceMs: 0 });
    const summary = Object.fromEntries(drifted.entities.map((e) => [e.entity, e.differences]));
    expect(summary.assets).toEqual({ missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 1 });
    expect(summary.dependencies).toEqual({ missing_in_postgres: 1, missing_in_memory: 0, fields_differ: 0 });
    expect(summary.contributors!.fields_differ).toBe(20);
    expect(drifted.differences.find((d) => d.entity === 'assets')!.fields).toEqual(['totalCost']);
    await db.close();
  }, 60_000);
});
