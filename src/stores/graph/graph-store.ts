import type {
  Asset,
  AssetInput,
  Contribution,
  ContributionInput,
  Contributor,
  ContributorInput,
  DependencyEdge,
  DependencyOptions,
  Project,
  ProjectInput,
  ProjectRef,
} from './graph-model.js';

/**
 * The GraphStore protocol: projects and their dependency graph, contributors, assets and
 * contributions. Every implementation means the same thing, checked by one contract suite
 * (test/contract). Keys are case-insensitive: (ecosystem, name) are folded to lowercase.
 */
export interface GraphStore {
  getProject(ref: ProjectRef): Promise<Project | null>;
  /** Creates or replaces a project; created_at and dependency_count survive a replace. */
  upsertProject(input: ProjectInput): Promise<Project>;
  /**
   * Projects whose name or description contains `query` (case-insensitive, no wildcards).
   * Order: name matches first, then by (ecosystem, name) in code point order. limit 1..1000, default 20.
   */
  search(query: string, limit?: number): Promise<Project[]>;
  countProjects(): Promise<number>;

  /** Records that `from` depends on `to`. Idempotent: an existing edge is returned unchanged. */
  addDependency(from: ProjectRef, to: ProjectRef, options?: DependencyOptions): Promise<DependencyEdge>;
  /** Number of projects that depend on `ref` (0 for an unknown project). */
  countDependents(ref: ProjectRef): Promise<number>;

  createContributor(input: ContributorInput): Promise<Contributor>;
  getContributor(id: string): Promise<Contributor | null>;
  /** Newest first, ties by id; limit 1..1000, default 100. */
  listContributors(limit?: number): Promise<Contributor[]>;

  createAsset(input: AssetInput): Promise<Asset>;
  getAsset(id: string): Promise<Asset | null>;
  /** Newest first, ties by id; limit 1..1000, default 100. */
  listAssets(limit?: number): Promise<Asset[]>;

  /** Stores a contribution and adds its cost to the asset's total_cost, atomically. */
  createContribution(input: ContributionInput): Promise<Contribution>;
  getContribution(id: string): Promise<Contribution | null>;
  /** Oldest first, ties by id. */
  listContributionsByAsset(assetId: string): Promise<Contribution[]>;
  /** Oldest first, ties by id. */
  listContributionsByContributor(contributorId: string): Promise<Contribution[]>;
}
