import { foldCase } from '../../domain/text.js';
import { TableMapping, timestampColumns } from '../../postgres/table-mapping.js';
import type { Asset, Contribution, Contributor, Project } from './graph-model.js';

/** The graph's tables in PostgreSQL (schema/001_initial_schema.sql) mapped column for column; dependency edges need joins (dependency-edges.ts). */
export const PROJECTS = new TableMapping<Project>(
  'projects',
  [
    { column: 'ecosystem', field: 'ecosystem', type: 'text' },
    { column: 'name', field: 'name', type: 'text' },
    { column: 'description', field: 'description', type: 'text' },
    {
      column: 'description_folded',
      type: 'text',
      derive: (r) => (typeof r.description === 'string' ? foldCase(r.description) : null),
    },
    { column: 'homepage_url', field: 'homepageUrl', type: 'text' },
    { column: 'repository_url', field: 'repositoryUrl', type: 'text' },
    { column: 'dependency_count', field: 'dependencyCount', type: 'integer' },
    ...timestampColumns('createdAt', 'updatedAt'),
  ],
  ['ecosystem', 'name'],
);

export const CONTRIBUTORS = new TableMapping<Contributor>(
  'contributors',
  [
    { column: 'id', field: 'id', type: 'uuid' },
    { column: 'name', field: 'name', type: 'text' },
    { column: 'email', field: 'email', type: 'text' },
    { column: 'github_username', field: 'githubUsername', type: 'text' },
    { column: 'wallet_address', field: 'walletAddress', type: 'text' },
    { column: 'metadata', field: 'metadata', type: 'jsonb' },
    ...timestampColumns('createdAt', 'updatedAt'),
  ],
  ['id'],
);

export const ASSETS = new TableMapping<Asset>(
  'assets',
  [
    { column: 'id', field: 'id', type: 'uuid' },
    { column: 'name', field: 'name', type: 'text' },
    { column: 'description', field: 'description', type: 'text' },
    { column: 'asset_type', field: 'assetType', type: 'text' },
    { column: 'total_cost', field: 'totalCost', type: 'money' },
    { column: 'metadata', field: 'metadata', type: 'jsonb' },
    ...timestampColumns('createdAt', 'updatedAt'),
  ],
  ['id'],
);

export const CONTRIBUTIONS = new TableMapping<Contribution>(
  'contributions',
  [
    { column: 'id', field: 'id', type: 'uuid' },
    { column: 'contributor_id', field: 'contributorId', type: 'uuid' },
    { column: 'asset_id', field: 'assetId', type: 'uuid' },
    { column: 'cost_amount', field: 'costAmount', type: 'money' },
    { column: 'coherence_score', field: 'coherenceScore', type: 'score' },
    { column: 'metadata', field: 'metadata', type: 'jsonb' },
    { column: 'timestamp', field: 'timestamp', type: 'timestamptz' },
  ],
  ['id'],
);
