import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../shared/atomic-file.js';
import type { EntityCatalog } from '../domain/records.js';
import type { MemoryTables } from './memory-tables.js';
import { DualWriteError } from '../domain/errors.js';

/** A snapshot that cannot be read or does not hold valid records. Never treated as empty. */
export class SnapshotError extends DualWriteError {
  constructor(path: string, problem: string) {
    super(`snapshot ${path}: ${problem}`);
  }
}

const FORMAT = 'dualwrite-snapshot';
const VERSION = 1;

/**
 * Writes every entity's records as JSON, atomically: to a temporary file that is
 * fsynced and then renamed over the target, so a crash leaves the old or the new file.
 */
export async function writeSnapshot<Records extends object>(
  path: string,
  tables: MemoryTables<Records>,
): Promise<void> {
  const entities: Record<string, unknown[]> = {};
  for (const entity of Object.keys(tables.catalog) as (keyof Records & string)[]) {
    entities[entity] = [...tables.values(entity)];
  }
  await writeFileAtomically(path, JSON.stringify({ format: FORMAT, version: VERSION, entities }));
}

/**
 * Reads a snapshot and hands each record to `put` (which validates it and its references),
 * entity by entity in catalog order. A missing file loads nothing (a first start) and
 * returns false; anything unreadable or invalid throws SnapshotError naming entity[index].
 */
export async function readSnapshot<Records extends object>(
  path: string,
  catalog: EntityCatalog<Records>,
  put: <E extends keyof Records & string>(entity: E, raw: unknown) => Promise<void>,
): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SnapshotError(path, `cannot be read (${(error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SnapshotError(path, `is not valid JSON (${(error as Error).message})`);
  }
  const document = parsed as { format?: unknown; version?: unknown; entities?: unknown };
  if (typeof parsed !== 'object' || parsed === null || document.format !== FORMAT || document.version !== VERSION) {
    throw new SnapshotError(path, `is not a ${FORMAT} version ${VERSION} file`);
  }
  if (typeof document.entities !== 'object' || document.entities === null)
    throw new SnapshotError(path, 'has no entities');
  const entities = document.entities as Record<string, unknown>;
  for (const entity of Object.keys(catalog) as (keyof Records & string)[]) {
    const rows = entities[entity];
    if (!Array.isArray(rows)) throw new SnapshotError(path, `has no list of ${entity} (a snapshot of another store?)`);
    for (const [index, raw] of rows.entries()) {
      try {
        await put(entity, raw);
      } catch (error) {
        throw new SnapshotError(path, `${entity}[${index}] is invalid: ${(error as Error).message}`);
      }
    }
  }
  return true;
}
