import { assertFits, formatMinorUnits, toMinorUnits, MONEY } from '../../domain/decimal.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import {
  decideAsset,
  decideContribution,
  decideContributor,
  decideDependency,
  decideProject,
  newAsset,
  newContribution,
  newContributor,
  projectRef,
  refLabel,
  totalCostOverflow,
  upsertedProject,
  type Asset,
  type AssetInput,
  type Contribution,
  type ContributionInput,
  type Contributor,
  type ContributorInput,
  type DependencyEdge,
  type DependencyOptions,
  type Project,
  type ProjectInput,
  type ProjectRef,
} from './graph-model.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import { pageLimit } from '../../domain/limits.js';
import { GRAPH_ENTITIES, type GraphRecords } from './graph-records.js';
import { compareText, foldCase, requireText } from '../../domain/text.js';
import { canonicalUuid } from '../../domain/time.js';
import type { GraphStore } from './graph-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import { encodeKey, MemoryTables } from '../../memory/memory-tables.js';
import {
  byNewest,
  byOldest,
  MultiIndex,
  MemorySnapshotStore,
  type MemoryStoreOptions,
} from '../../memory/memory-common.js';

/** GraphStore in process memory, optionally persisted to a JSON snapshot file. */
export class MemoryGraphStore
  extends MemorySnapshotStore<GraphRecords>
  implements GraphStore, RecordPort<GraphRecords>
{
  readonly tables = new MemoryTables(GRAPH_ENTITIES);
  private readonly context: WriteContext;
  private readonly dependents = new MultiIndex();
  private readonly byAsset = new MultiIndex();
  private readonly byContributor = new MultiIndex();

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    this.context = writeContext(options);
  }

  /** Creates a store and loads options.snapshotPath if that file exists. */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryGraphStore> {
    return new MemoryGraphStore(options).loadSnapshot(GRAPH_ENTITIES);
  }

  /** Removes every record. */
  clear(): void {
    this.tables.clear();
    this.dependents.clear();
    this.byAsset.clear();
    this.byContributor.clear();
  }

  async getProject(ref: ProjectRef): Promise<Project | null> {
    const key = projectRef('project', ref);
    return this.tables.get('projects', [key.ecosystem, key.name]) ?? null;
  }

  async upsertProject(input: ProjectInput): Promise<Project> {
    const write = decideProject(input, this.context);
    const project = upsertedProject(this.tables.get('projects', [write.ecosystem, write.name]) ?? null, write);
    this.tables.put('projects', project);
    return project;
  }

  async search(query: string, limit?: number): Promise<Project[]> {
    const needle = foldCase(requireText('query', query));
    const max = pageLimit('limit', limit, 20);
    const matches: { project: Project; nameMatch: boolean }[] = [];
    for (const project of this.tables.values('projects')) {
      const nameMatch = project.name.includes(needle);
      if (nameMatch || (project.description !== null && foldCase(project.description).includes(needle))) {
        matches.push({ project, nameMatch });
      }
    }
    return matches
      .sort(searchOrder)
      .slice(0, max)
      .map((match) => match.project);
  }

  async countProjects(): Promise<number> {
    return this.tables.size('projects');
  }

  async addDependency(from: ProjectRef, to: ProjectRef, options?: DependencyOptions): Promise<DependencyEdge> {
    const write = decideDependency(from, to, options, this.context);
    const source = this.requireProject('from', write.from);
    this.requireProject('to', write.to);
    const existing = this.tables.get('dependencies', edgeKey(write));
    if (existing) return existing;
    const edge: DependencyEdge = { from: write.from, to: write.to, createdAt: write.at };
    this.store('dependencies', edge);
    this.tables.put('projects', { ...source, dependencyCount: source.dependencyCount + 1, updatedAt: write.at });
    return edge;
  }

  async countDependents(ref: ProjectRef): Promise<number> {
    const key = projectRef('project', ref);
    return this.dependents.count(encodeKey([key.ecosystem, key.name]));
  }

  async createContributor(input: ContributorInput): Promise<Contributor> {
    const contributor = newContributor(decideContributor(input, this.context));
    this.assertNew('contributors', contributor.id);
    this.store('contributors', contributor);
    return contributor;
  }

  async getContributor(id: string): Promise<Contributor | null> {
    return this.tables.get('contributors', [canonicalUuid('id', id)]) ?? null;
  }

  async listContributors(limit?: number): Promise<Contributor[]> {
    return [...this.tables.values('contributors')].sort(byNewest).slice(0, pageLimit('limit', limit, 100));
  }

  async createAsset(input: AssetInput): Promise<Asset> {
    const asset = newAsset(decideAsset(input, this.context));
    this.assertNew('assets', asset.id);
    this.store('assets', asset);
    return asset;
  }

  async getAsset(id: string): Promise<Asset | null> {
    return this.tables.get('assets', [canonicalUuid('id', id)]) ?? null;
  }

  async listAssets(limit?: number): Promise<Asset[]> {
    return [...this.tables.values('assets')].sort(byNewest).slice(0, pageLimit('limit', limit, 100));
  }

  async createContribution(input: ContributionInput): Promise<Contribution> {
    const contribution = newContribution(decideContribution(input, this.context));
    this.requireRecord('contributors', 'contributorId', contribution.contributorId);
    const asset = this.requireRecord('assets', 'assetId', contribution.assetId);
    this.assertNew('contributions', contribution.id);
    const total =
      toMinorUnits('totalCost', asset.totalCost, MONEY) + toMinorUnits('costAmount', contribution.costAmount, MONEY);
    try {
      assertFits('totalCost', total, MONEY);
    } catch {
      throw totalCostOverflow();
    }
    this.store('contributions', contribution);
    // What the schema's trigger does: add the cost and stamp the asset with the contribution's time.
    this.tables.put('assets', {
      ...asset,
      totalCost: formatMinorUnits(total, MONEY),
      updatedAt: contribution.timestamp,
    });
    return contribution;
  }

  async getContribution(id: string): Promise<Contribution | null> {
    return this.tables.get('contributions', [canonicalUuid('id', id)]) ?? null;
  }

  async listContributionsByAsset(assetId: string): Promise<Contribution[]> {
    return this.contributionsIn(this.byAsset, canonicalUuid('assetId', assetId));
  }

  async listContributionsByContributor(contributorId: string): Promise<Contribution[]> {
    return this.contributionsIn(this.byContributor, canonicalUuid('contributorId', contributorId));
  }

  keyOf<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): RecordKey {
    return GRAPH_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof GraphRecords>(entity: E, options: ScanOptions): Promise<GraphRecords[E][]> {
    return this.tables.scan(entity, options);
  }

  async getRecord<E extends keyof GraphRecords>(entity: E, key: RecordKey): Promise<GraphRecords[E] | null> {
    return this.tables.get(entity, key) ?? null;
  }

  async putRecord<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): Promise<void> {
    const normalized = GRAPH_ENTITIES[entity].normalize(record);
    if (entity === 'dependencies') {
      const edge = normalized as DependencyEdge;
      this.requireProject('from', edge.from);
      this.requireProject('to', edge.to);
    } else if (entity === 'contributions') {
      const contribution = normalized as Contribution;
      this.requireRecord('contributors', 'contributorId', contribution.contributorId);
      this.requireRecord('assets', 'assetId', contribution.assetId);
    }
    this.store(entity, normalized);
  }

  async deleteRecord<E extends keyof GraphRecords>(entity: E, key: RecordKey): Promise<boolean> {
    const record = this.tables.get(entity, key);
    if (!record) return false;
    this.unindex(entity, record);
    this.tables.delete(entity, key);
    // ON DELETE CASCADE, as in the schema.
    if (entity === 'projects') {
      const gone = encodeKey(key);
      for (const edge of [...this.tables.values('dependencies')]) {
        if (
          encodeKey([edge.from.ecosystem, edge.from.name]) === gone ||
          encodeKey([edge.to.ecosystem, edge.to.name]) === gone
        ) {
          await this.deleteRecord('dependencies', edgeKey(edge));
        }
      }
    } else if (entity === 'contributors' || entity === 'assets') {
      const index = entity === 'assets' ? this.byAsset : this.byContributor;
      for (const id of [...index.members(key[0]!)]) await this.deleteRecord('contributions', [id]);
    }
    return true;
  }

  /** Puts a record and keeps the secondary indexes in step. */
  private store<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): void {
    const previous = this.tables.get(entity, GRAPH_ENTITIES[entity].keyOf(record));
    if (previous) this.unindex(entity, previous);
    this.tables.put(entity, record);
    if (entity === 'dependencies') {
      const edge = record as DependencyEdge;
      this.dependents.add(encodeKey([edge.to.ecosystem, edge.to.name]), encodeKey(edgeKey(edge)));
    } else if (entity === 'contributions') {
      const contribution = record as Contribution;
      this.byAsset.add(contribution.assetId, contribution.id);
      this.byContributor.add(contribution.contributorId, contribution.id);
    }
  }

  private unindex<E extends keyof GraphRecords>(entity: E, record: GraphRecords[E]): void {
    if (entity === 'dependencies') {
      const edge = record as DependencyEdge;
      this.dependents.remove(encodeKey([edge.to.ecosystem, edge.to.name]), encodeKey(edgeKey(edge)));
    } else if (entity === 'contributions') {
      const contribution = record as Contribution;
      this.byAsset.remove(contribution.assetId, contribution.id);
      this.byContributor.remove(contribution.contributorId, contribution.id);
    }
  }

  private contributionsIn(index: MultiIndex, id: string): Contribution[] {
    return [...index.members(id)]
      .map((contributionId) => this.tables.get('contributions', [contributionId])!)
      .sort(byOldest);
  }

  private requireProject(field: string, ref: ProjectRef): Project {
    const project = this.tables.get('projects', [ref.ecosystem, ref.name]);
    if (!project) throw new NotFoundError(field, refLabel(ref));
    return project;
  }

  private requireRecord<E extends 'contributors' | 'assets'>(entity: E, field: string, id: string): GraphRecords[E] {
    const record = this.tables.get(entity, [id]);
    if (!record) throw new NotFoundError(field, id);
    return record;
  }

  private assertNew(entity: 'contributors' | 'assets' | 'contributions', id: string): void {
    if (this.tables.get(entity, [id])) throw new ConflictError('id', id);
  }
}

function edgeKey(edge: { from: ProjectRef; to: ProjectRef }): RecordKey {
  return GRAPH_ENTITIES.dependencies.keyOf({ from: edge.from, to: edge.to, createdAt: '' });
}

/** Search order: name matches first, then (ecosystem, name) by code point. */
function searchOrder(a: { project: Project; nameMatch: boolean }, b: { project: Project; nameMatch: boolean }): number {
  if (a.nameMatch !== b.nameMatch) return a.nameMatch ? -1 : 1;
  return compareText(a.project.ecosystem, b.project.ecosystem) || compareText(a.project.name, b.project.name);
}
