import type { AgentTask } from './agent-task.js';
import { TASK_STATUSES, TASK_TYPES, taskId } from './agent-task.js';
import { oneOf, optionalText, requireText } from './text.js';
import { canonicalDecimal, MONEY } from './decimal.js';
import { ValidationError } from './errors.js';
import type { Asset, Contribution, Contributor, DependencyEdge, Project } from './graph.js';
import { coherenceScore, costAmount, projectRef } from './graph.js';
import { assertObject } from './object.js';
import { canonicalJsonObject } from './json.js';
import { integerIn } from './limits.js';
import { canonicalTimestamp, canonicalUuid, optionalTimestamp } from './time.js';

/** A record's key as a tuple of strings; keys order part by part in code point order (compareText). */
export type RecordKey = readonly string[];

/** How one entity's records are keyed and validated, the same for every store. */
export interface EntityDefinition<R> {
  keyOf(record: R): RecordKey;
  /** Validates a record from outside (snapshot file, other store) and returns its canonical form. */
  normalize(raw: unknown): R;
}

export interface GraphRecords {
  projects: Project;
  dependencies: DependencyEdge;
  contributors: Contributor;
  assets: Asset;
  contributions: Contribution;
}

export interface AgentTaskRecords {
  agent_tasks: AgentTask;
}

export type EntityCatalog<Records> = { readonly [E in keyof Records]: EntityDefinition<Records[E]> };

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
        dependencyCount: count('dependencyCount', r.dependencyCount),
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

export const AGENT_TASK_ENTITIES: EntityCatalog<AgentTaskRecords> = {
  agent_tasks: {
    keyOf: (t) => [t.id],
    normalize: (raw) => {
      const r = recordObject('agent_tasks', raw);
      const progressPct =
        r.progressPct === null || r.progressPct === undefined ? null : count('progressPct', r.progressPct);
      if (progressPct !== null && progressPct > 100)
        throw new ValidationError('progressPct', `must be at most 100, got ${progressPct}`);
      return {
        id: taskId('id', r.id),
        direction: requireText('direction', r.direction, { nonBlank: true }),
        taskType: oneOf('taskType', r.taskType, TASK_TYPES),
        status: oneOf('status', r.status, TASK_STATUSES),
        model: requireText('model', r.model, { maxLength: 100 }),
        command: requireText('command', r.command),
        output: optionalText('output', r.output),
        context: canonicalJsonObject('context', r.context),
        progressPct,
        currentStep: optionalText('currentStep', r.currentStep),
        decisionPrompt: optionalText('decisionPrompt', r.decisionPrompt),
        decision: optionalText('decision', r.decision),
        tier: optionalText('tier', r.tier, { maxLength: 50 }),
        startedAt: optionalTimestamp('startedAt', r.startedAt),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
};

/** Entity names of a catalog, in its declared order. */
export function entityNames<Records>(catalog: EntityCatalog<Records>): (keyof Records & string)[] {
  return Object.keys(catalog) as (keyof Records & string)[];
}

function recordObject(entity: string, raw: unknown): Record<string, unknown> {
  assertObject(entity, raw);
  return raw as Record<string, unknown>;
}

/** The records in first-seen order of their keys, each with the last version given for its key. */
export function lastOfEachKey<R>(records: readonly R[], keyOf: (record: R) => unknown): R[] {
  const byKey = new Map<string, R>();
  for (const record of records) byKey.set(JSON.stringify(keyOf(record)), record);
  return [...byKey.values()];
}

function count(field: string, value: unknown): number {
  return integerIn(field, value, 0, 2147483647, 'a non-negative 32-bit integer');
}
