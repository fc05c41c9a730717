import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The file beside the backups that describes each of them. */
export const METADATA_FILE = 'metadata.json';

/** One backup as metadata.json records it. */
export interface BackupEntry {
  /** File name, in the same folder as metadata.json. */
  readonly file: string;
  /** When it was taken, ISO 8601. */
  readonly time: string;
  /** Highest migration version applied to the database backed up. */
  readonly schemaVersion: number;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly serverVersion: string;
  /** Row count of each dualwrite table at the time of the dump. */
  readonly rowCounts: Record<string, number>;
}

interface MetadataFile {
  readonly backups: readonly BackupEntry[];
}

/** The entries of DIR/metadata.json, oldest first; none when the file is not there yet. */
export async function readBackupEntries(dir: string): Promise<BackupEntry[]> {
  let text: string;
  try {
    text = await readFile(join(dir, METADATA_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return [...(JSON.parse(text) as MetadataFile).backups];
}

/** Replaces DIR/metadata.json with `entries`, through a temporary file so a crash never leaves half of it. */
export async function writeBackupEntries(dir: string, entries: readonly BackupEntry[]): Promise<void> {
  const path = join(dir, METADATA_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify({ backups: entries } satisfies MetadataFile, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

/** The metadata entry of backup file `path`, read from metadata.json beside it; undefined when it has none. */
export async function entryFor(path: string): Promise<BackupEntry | undefined> {
  return (await readBackupEntries(dirname(path))).find((entry) => entry.file === basename(path));
}

/** sha256 of a file's bytes, hex, read as a stream (dumps can be large). */
export async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
