import { MemoryAgentTaskStore, MemoryGraphStore, openDualWrite, type AgentTaskStore, type GraphStore } from 'dualwrite';

// The API's stores as they are today: in memory, already holding data.
const graph = new MemoryGraphStore();
const tasks = new MemoryAgentTaskStore();
await graph.upsertProject({ ecosystem: 'npm', name: 'react', description: 'UI library' });

// One call wraps them. Embedded PGlite here; set DATABASE_URL for a PostgreSQL server.
const dw = await openDualWrite({
  memory: { graph, tasks },
  env: { ...process.env, DUAL_WRITE_MODE: 'dual-write' },
});

// The API keeps calling the same interfaces: no call site changes.
const api: { graph: GraphStore; tasks: AgentTaskStore } = { graph: dw.graph, tasks: dw.tasks };
await api.graph.upsertProject({ ecosystem: 'npm', name: 'vue', description: 'mirrored as it is written' });
await api.tasks.createTask({ direction: 'upgrade react', taskType: 'impl', model: 'gpt', command: 'npm up' });

// What memory held before dual-write began is copied over, then both sides are compared.
const { backfill, verify } = await dw.resyncPostgres();
console.log(`backfilled ${backfill.totals.copied} records; the sides are ${verify.consistent ? 'equal' : 'different'}`);
console.log(
  `react in PostgreSQL: ${(await dw.postgres.graph.getProject({ ecosystem: 'npm', name: 'react' }))?.description}`,
);
await dw.close();
