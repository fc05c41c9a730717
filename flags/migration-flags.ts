import type { MigrationFlags } from '../src/ports/flags.js';
import { isStage, type Stage } from '../src/ports/stage.js';
import { RequestRefusedError } from '../src/domain/errors.js';

export type { FlagSource, MigrationFlags } from '../src/ports/flags.js';

export const DEFAULT_ROLLOUT_GROUP = 'dualwrite.read-from-postgres';

/** Flags cannot be set here because another source owns them (Unleash, or the caller's own FlagState). */
export class FlagSourceConflictError extends RequestRefusedError {}

/** Reports a source's trouble without throwing (the last known flags stay in force). */
export type FlagErrorListener = (source: string, error: unknown) => void;

/** Validates flags from outside (file, env, Unleash); throws a TypeError naming the field. */
export function parseFlags(
  raw: { stage?: unknown; readPercent?: unknown; rolloutGroup?: unknown },
  origin: string,
): MigrationFlags {
  const stage = parseStage(raw.stage, `${origin} stage`);
  const readPercent = parsePercent(raw.readPercent ?? 0, `${origin} readFromPostgresPercent`);
  const rolloutGroup = raw.rolloutGroup === undefined ? DEFAULT_ROLLOUT_GROUP : String(raw.rolloutGroup);
  return { stage, readPercent, rolloutGroup };
}

/** A stage name, or seed 004's DUAL_WRITE_MODE booleans: true is dual-write, false memory-only. */
export function parseStage(value: unknown, name: string): Stage {
  if (value === true || value === 'true') return 'dual-write';
  if (value === false || value === 'false' || value === undefined || value === '') return 'memory-only';
  if (isStage(value)) return value;
  throw new TypeError(
    `${name} must be a stage (memory-only, dual-write, read-shift, postgres-primary, postgres-only) or true/false, got ${JSON.stringify(value)}`,
  );
}

export function parsePercent(value: unknown, name: string): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 100) {
    throw new TypeError(`${name} must be an integer from 0 to 100, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** Shared listener bookkeeping for sources. */
export class Listeners {
  private readonly listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(): void {
    for (const listener of this.listeners) listener();
  }
}
