import {
  decideAsset,
  decideContribution,
  decideContributor,
  decideDependency,
  decideProject,
  projectRef,
  type ProjectRef,
} from './graph-model.js';
import type { GraphStore } from './graph-store.js';
import { GRAPH_ENTITIES, type GraphRecords } from './graph-records.js';
import { MemoryGraphStore } from './memory-graph-store.js';
import { DEPENDENCY_EDGES } from './dependency-edges.js';
import { mappedEntity } from '../../postgres/entity-sql.js';
import { PostgresGraphStore, RAW_PUT } from './postgres-graph-store.js';
import { ASSETS, CONTRIBUTIONS, CONTRIBUTORS, PROJECTS } from './graph-table-mappings.js';
import type { StoreDescription } from '../../ports/store-description.js';
import type { StoreDefinition } from '../store-definition.js';

/** Routing key of a project: its folded (ecosystem, name); unparseable refs share one key. */
const project = (ref: ProjectRef) => {
  try {
    const { ecosystem, name } = projectRef('project', ref);
    return `project:${ecosystem}/${name}`;
  } catch {
    return 'project:?';
  }
};
const id = (kind: string) => (value: string) => `${kind}:${String(value).toLowerCase()}`;

export const GRAPH_STORE_METHODS: StoreDescription<GraphStore> = {
  getProject: { kind: 'read', key: project },
  upsertProject: {
    kind: 'write',
    key: project,
    decide: (context, input) => [decideProject(input, context)],
    affects: ([input]) => [{ entity: 'projects', key: [input.ecosystem, input.name] }],
  },
  search: { kind: 'read' },
  countProjects: { kind: 'read' },
  // An edge changes its source project's dependency count: order it with that project's
  // writes, after those of the project it points to.
  addDependency: {
    kind: 'write',
    key: project,
    requires: (_from, to) => [project(to)],
    decide: (context, from, to, options) => {
      const edge = decideDependency(from, to, options, context);
      return [edge.from, edge.to, { at: edge.at }];
    },
    affects: ([from, to]) => [
      { entity: 'projects', key: [from.ecosystem, from.name] },
      { entity: 'dependencies', key: [from.ecosystem, from.name, to.ecosystem, to.name] },
    ],
  },
  countDependents: { kind: 'read', key: project },
  createContributor: {
    kind: 'write',
    key: (input) => id('contributor')(input.id!),
    decide: (context, input) => [decideContributor(input, context)],
    affects: ([input]) => [{ entity: 'contributors', key: [input.id!] }],
  },
  getContributor: { kind: 'read', key: id('contributor') },
  listContributors: { kind: 'read' },
  createAsset: {
    kind: 'write',
    key: (input) => id('asset')(input.id!),
    decide: (context, input) => [decideAsset(input, context)],
    affects: ([input]) => [{ entity: 'assets', key: [input.id!] }],
  },
  getAsset: { kind: 'read', key: id('asset') },
  listAssets: { kind: 'read' },
  // A contribution changes its asset's total: order it with that asset's writes, after its contributor's.
  createContribution: {
    kind: 'write',
    key: (input) => id('asset')(input.assetId),
    requires: (input) => [id('contributor')(input.contributorId)],
    decide: (context, input) => [decideContribution(input, context)],
    // The asset first: the contribution references it, and its copied total already includes it.
    affects: ([input]) => [
      { entity: 'assets', key: [input.assetId] },
      { entity: 'contributions', key: [input.id!] },
    ],
  },
  getContribution: { kind: 'read', key: id('contribution') },
  listContributionsByAsset: { kind: 'read', key: id('asset') },
  listContributionsByContributor: { kind: 'read', key: id('contributor') },
};

/** The GraphStore: projects, dependency edges, contributors, assets and contributions. */
export const GRAPH_DEFINITION: StoreDefinition<GraphStore, GraphRecords> = {
  name: 'graph',
  methods: GRAPH_STORE_METHODS,
  catalog: GRAPH_ENTITIES,
  postgres: {
    projects: mappedEntity(PROJECTS),
    dependencies: DEPENDENCY_EDGES,
    contributors: mappedEntity(CONTRIBUTORS),
    assets: mappedEntity(ASSETS),
    // A copied contribution is already in its asset's copied total: the trigger must not add it again.
    contributions: mappedEntity(CONTRIBUTIONS, { beforeCopy: RAW_PUT }),
  },
  createMemory: (options) => new MemoryGraphStore(options),
  createPostgres: (db, options) => new PostgresGraphStore(db, options),
};
