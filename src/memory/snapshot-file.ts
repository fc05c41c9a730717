import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { EntityCatalog } from '../domain/records.js';
import { MemoryTables } from './memory-tables.js';

/** A snapshot that cannot be read or does not hold valid records. Never treated as empty. */
export class SnapshotError extends Error {
  constructor(path: string, problem: string) {
    super(`snapshot ${path}: ${problem}`);
    this.name = 'SnapshotError';
  }
}

const FORMAT = 'dualwrite-snapshot';
const VERSION = 1;

/**
 * Writes every entity's records as JSON, atomically: to a temporary file that is
 * fsynced and then renamed over the target, so a crash leaves the old or the new file.
 */
export async function writeSnapshot<Records extends object>(path: string, tables: MemoryTables<Records>): Promise<void> {
  const entities: Record<string, unknown[]> = {};
  for (const entity of Object.keys(tables.catalog) as (keyof Records & string)[]) {
    entities[entity] = [...tables.values(entity)];
  }
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(JSON.stringify({ format: FORMAT, version: VERSION, entities }));
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Loads a snapshot into `tables`, validating every record with the catalog. A missing
 * file loads nothing (a first start); anything unreadable or invalid throws SnapshotError.
 */
export async function readSnapshot<Records extends object>(path: string, tables: MemoryTables<Records>): Promise<boolean> {
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
  if (typeof document.entities !== 'object' || document.entities === null) throw new SnapshotError(path, 'has no entities');
  const entities = document.entities as Record<string, unknown>;
  const catalog: EntityCatalog<Records> = tables.catalog;
  for (const entity of Object.keys(catalog) as (keyof Records & string)[]) {
    const rows = entities[entity] ?? [];
    if (!Array.isArray(rows)) throw new SnapshotError(path, `entity ${entity} is not a list`);
    rows.forEach((raw, index) => {
      try {
        tables.put(entity, catalog[entity].normalize(raw));
      } catch (error) {
        throw new SnapshotError(path, `${entity}[${index}] is invalid: ${(error as Error).message}`);
      }
    });
  }
  return true;
}
