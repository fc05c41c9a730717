import { formatMinorUnits, MONEY, SCORE, toMinorUnits } from '../../domain/decimal.js';
import { ValidationError } from '../../domain/errors.js';
import { canonicalJsonObject, type JsonObject } from '../../domain/json.js';
import { foldCase, optionalText, requireText, describe } from '../../domain/text.js';
import { canonicalUuid } from '../../domain/time.js';
import { assertObject } from '../../domain/object.js';
import { decideTime, decideUuid, type Decided, type WriteContext } from '../../domain/write-context.js';

/** A package project, keyed by (ecosystem, name), both stored lowercase. */
export interface Project {
  readonly ecosystem: string;
  readonly name: string;
  readonly description: string | null;
  readonly homepageUrl: string | null;
  readonly repositoryUrl: string | null;
  /** Number of outgoing dependency edges; maintained by the store. */
  readonly dependencyCount: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ProjectRef {
  readonly ecosystem: string;
  readonly name: string;
}

/** A dependency edge: `from` depends on `to`. */
export interface DependencyEdge {
  readonly from: ProjectRef;
  readonly to: ProjectRef;
  readonly createdAt: string;
}

export interface Contributor {
  readonly id: string;
  readonly name: string;
  readonly email: string | null;
  readonly githubUsername: string | null;
  readonly walletAddress: string | null;
  readonly metadata: JsonObject;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Asset {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
  readonly assetType: string;
  /** Sum of its contributions' costs, NUMERIC(15,2) as a canonical string. */
  readonly totalCost: string;
  readonly metadata: JsonObject;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Contribution {
  readonly id: string;
  readonly contributorId: string;
  readonly assetId: string;
  /** NUMERIC(15,2) >= 0 as a canonical string. */
  readonly costAmount: string;
  /** NUMERIC(3,2) in 0..1 as a canonical string. */
  readonly coherenceScore: string;
  readonly metadata: JsonObject;
  readonly timestamp: string;
}

/** Input of upsertProject. Fields left out are stored as NULL (an upsert replaces). */
export interface ProjectInput {
  readonly ecosystem: string;
  readonly name: string;
  readonly description?: string | null;
  readonly homepageUrl?: string | null;
  readonly repositoryUrl?: string | null;
  /** Write time; decided by the clock when absent. */
  readonly at?: string;
}

export interface ContributorInput {
  /** Decided by the id generator when absent. */
  readonly id?: string;
  readonly name: string;
  readonly email?: string | null;
  readonly githubUsername?: string | null;
  readonly walletAddress?: string | null;
  readonly metadata?: JsonObject | null;
  readonly at?: string;
}

export interface AssetInput {
  readonly id?: string;
  readonly name: string;
  readonly description?: string | null;
  readonly assetType: string;
  readonly metadata?: JsonObject | null;
  readonly at?: string;
}

export interface ContributionInput {
  readonly id?: string;
  readonly contributorId: string;
  readonly assetId: string;
  readonly costAmount: string | number;
  readonly coherenceScore: string | number;
  readonly metadata?: JsonObject | null;
  readonly timestamp?: string;
}

export interface DependencyOptions {
  readonly at?: string;
}

/**
 * Validates and case-folds a project key. Errors name `${field}.ecosystem` and
 * `${field}.name`, or plain `ecosystem` and `name` when `field` is empty.
 */
export function projectRef(field: string, value: unknown): ProjectRef {
  if (typeof value !== 'object' || value === null) {
    throw new ValidationError(field || 'project', `must be an object with ecosystem and name, got ${describe(value)}`);
  }
  const ref = value as Record<string, unknown>;
  const prefix = field ? `${field}.` : '';
  // Lengths are checked after folding: lowercasing can add code points ('İ' becomes 'i̇').
  const folded = (name: string, max: number) =>
    requireText(`${prefix}${name}`, foldCase(requireText(`${prefix}${name}`, ref[name], { nonBlank: true })), {
      maxLength: max,
    });
  return { ecosystem: folded('ecosystem', 100), name: folded('name', 255) };
}

export function decideProject(input: ProjectInput, context: WriteContext): Decided<ProjectInput> {
  assertObject('project', input);
  const ref = projectRef('', input);
  return {
    ...ref,
    description: optionalText('description', input.description),
    homepageUrl: optionalText('homepageUrl', input.homepageUrl, { maxLength: 500 }),
    repositoryUrl: optionalText('repositoryUrl', input.repositoryUrl, { maxLength: 500 }),
    at: decideTime('at', input.at, context),
  };
}

export function decideDependency(
  from: unknown,
  to: unknown,
  options: DependencyOptions | undefined,
  context: WriteContext,
): { from: ProjectRef; to: ProjectRef; at: string } {
  const fromRef = projectRef('from', from);
  const toRef = projectRef('to', to);
  if (fromRef.ecosystem === toRef.ecosystem && fromRef.name === toRef.name) {
    throw new ValidationError('to', 'a project cannot depend on itself');
  }
  return { from: fromRef, to: toRef, at: decideTime('at', options?.at, context) };
}

export function decideContributor(input: ContributorInput, context: WriteContext): Decided<ContributorInput> {
  assertObject('contributor', input);
  return {
    id: decideUuid('id', input.id, context),
    name: requireText('name', input.name, { maxLength: 255, nonBlank: true }),
    email: optionalText('email', input.email, { maxLength: 255 }),
    githubUsername: optionalText('githubUsername', input.githubUsername, { maxLength: 255 }),
    walletAddress: optionalText('walletAddress', input.walletAddress, { maxLength: 255 }),
    metadata: canonicalJsonObject('metadata', input.metadata),
    at: decideTime('at', input.at, context),
  };
}

export function decideAsset(input: AssetInput, context: WriteContext): Decided<AssetInput> {
  assertObject('asset', input);
  return {
    id: decideUuid('id', input.id, context),
    name: requireText('name', input.name, { maxLength: 255, nonBlank: true }),
    description: optionalText('description', input.description),
    assetType: requireText('assetType', input.assetType, { maxLength: 50, nonBlank: true }),
    metadata: canonicalJsonObject('metadata', input.metadata),
    at: decideTime('at', input.at, context),
  };
}

export function decideContribution(input: ContributionInput, context: WriteContext): Decided<ContributionInput> {
  assertObject('contribution', input);
  return {
    id: decideUuid('id', input.id, context),
    contributorId: canonicalUuid('contributorId', input.contributorId),
    assetId: canonicalUuid('assetId', input.assetId),
    costAmount: costAmount('costAmount', input.costAmount),
    coherenceScore: coherenceScore('coherenceScore', input.coherenceScore),
    metadata: canonicalJsonObject('metadata', input.metadata),
    timestamp: decideTime('timestamp', input.timestamp, context),
  };
}

/** A contribution cost: NUMERIC(15,2) and >= 0 (the schema's CHECK). */
export function costAmount(field: string, value: unknown): string {
  const cost = toMinorUnits(field, value, MONEY);
  if (cost < 0n) throw new ValidationError(field, `must be >= 0, got ${formatMinorUnits(cost, MONEY)}`);
  return formatMinorUnits(cost, MONEY);
}

/** A coherence score: NUMERIC(3,2) from 0 to 1 (the schema's CHECK). */
export function coherenceScore(field: string, value: unknown): string {
  const score = toMinorUnits(field, value, SCORE);
  if (score < 0n || score > 100n)
    throw new ValidationError(field, `must be between 0 and 1, got ${formatMinorUnits(score, SCORE)}`);
  return formatMinorUnits(score, SCORE);
}

/** The record an upsert produces, given the record already stored under its key. */
export function upsertedProject(existing: Project | null, write: Decided<ProjectInput>): Project {
  return {
    ecosystem: write.ecosystem,
    name: write.name,
    description: write.description,
    homepageUrl: write.homepageUrl,
    repositoryUrl: write.repositoryUrl,
    dependencyCount: existing?.dependencyCount ?? 0,
    createdAt: existing?.createdAt ?? write.at,
    updatedAt: write.at,
  };
}

export function newContributor(write: Decided<ContributorInput>): Contributor {
  const { at, ...fields } = write;
  return { ...fields, createdAt: at, updatedAt: at };
}

export function newAsset(write: Decided<AssetInput>): Asset {
  const { at, ...fields } = write;
  return { ...fields, totalCost: '0.00', createdAt: at, updatedAt: at };
}

export function newContribution(write: Decided<ContributionInput>): Contribution {
  return write;
}

/** The error both stores raise when a contribution would overflow its asset's total_cost. */
export function totalCostOverflow(): ValidationError {
  return new ValidationError(
    'costAmount',
    `would make the asset's totalCost exceed NUMERIC(${MONEY.precision},${MONEY.scale})`,
  );
}

/** Display form of a project key in errors: "ecosystem/name". */
export function refLabel(ref: ProjectRef): string {
  return `${ref.ecosystem}/${ref.name}`;
}
