import { canonicalDecimal, MONEY } from '../../domain/decimal.js';
import { ValidationError } from '../../domain/errors.js';
import { canonicalJsonObject } from '../../domain/json.js';
import { nonNegativeInteger } from '../../domain/limits.js';
import { recordObject, type EntityCatalog } from '../../domain/records.js';
import { optionalText, requireText } from '../../domain/text.js';
import { canonicalTimestamp, canonicalUuid } from '../../domain/time.js';
import {
  coherenceScore,
  costAmount,
  projectRef,
  type Asset,
  type Contribution,
  type Contributor,
  type DependencyEdge,
  type Project,
} from './graph-model.js';

/** The graph store's records, by entity. */
export interface GraphRecords {
  projects: Project;
  dependencies: DependencyEdge;
  contributors: Contributor;
  assets: Asset;
  contributions: Contribution;
}

/** Graph entities in dependency order: a record's references come before it. */
export const GRAPH_ENTITIES: EntityCatalog<GraphRecords> = {
  projects: {
    keyOf: (p) => [p.ecosystem, p.name],
    normalize: (raw) => {
      const r = recordObject('projects', raw);
      const ref = projectRef('', r);
      return {
        ...ref,
        description: optionalText('description', r.description),
        homepageUrl: optionalText('homepageUrl', r.homepageUrl, { maxLength: 500 }),
        repositoryUrl: optionalText('repositoryUrl', r.repositoryUrl, { maxLength: 500 }),
        dependencyCount: nonNegativeInteger('dependencyCount', r.dependencyCount),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
  dependencies: {
    keyOf: (e) => [e.from.ecosystem, e.from.name, e.to.ecosystem, e.to.name],
    normalize: (raw) => {
      const r = recordObject('dependencies', raw);
      const from = projectRef('from', r.from);
      const to = projectRef('to', r.to);
      if (from.ecosystem === to.ecosystem && from.name === to.name)
        throw new ValidationError('to', 'a project cannot depend on itself');
      return { from, to, createdAt: canonicalTimestamp('createdAt', r.createdAt) };
    },
  },
  contributors: {
    keyOf: (c) => [c.id],
    normalize: (raw) => {
      const r = recordObject('contributors', raw);
      return {
        id: canonicalUuid('id', r.id),
        name: requireText('name', r.name, { maxLength: 255 }),
        email: optionalText('email', r.email, { maxLength: 255 }),
        githubUsername: optionalText('githubUsername', r.githubUsername, { maxLength: 255 }),
        walletAddress: optionalText('walletAddress', r.walletAddress, { maxLength: 255 }),
        metadata: canonicalJsonObject('metadata', r.metadata),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
  assets: {
    keyOf: (a) => [a.id],
    normalize: (raw) => {
      const r = recordObject('assets', raw);
      return {
        id: canonicalUuid('id', r.id),
        name: requireText('name', r.name, { maxLength: 255 }),
        description: optionalText('description', r.description),
        assetType: requireText('assetType', r.assetType, { maxLength: 50 }),
        totalCost: canonicalDecimal('totalCost', r.totalCost, MONEY),
        metadata: canonicalJsonObject('metadata', r.metadata),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
  contributions: {
    keyOf: (c) => [c.id],
    normalize: (raw) => {
      const r = recordObject('contributions', raw);
      return {
        id: canonicalUuid('id', r.id),
        contributorId: canonicalUuid('contributorId', r.contributorId),
        assetId: canonicalUuid('assetId', r.assetId),
        costAmount: costAmount('costAmount', r.costAmount),
        coherenceScore: coherenceScore('coherenceScore', r.coherenceScore),
        metadata: canonicalJsonObject('metadata', r.metadata),
        timestamp: canonicalTimestamp('timestamp', r.timestamp),
      };
    },
  },
};
