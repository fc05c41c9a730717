import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readBackupEntries, writeBackupEntries, type BackupEntry } from './backup-metadata.js';

/** Which backups to keep; a backup is kept when any rule given keeps it. Neither given: all are kept. */
export interface RetentionPolicy {
  /** The newest N. */
  readonly keep?: number;
  /** Those taken less than D days ago. */
  readonly keepDays?: number;
}

/** Deletes the backups in `dir` the policy does not keep, files and metadata entries; resolves to the entries deleted. */
export async function applyRetention(dir: string, policy: RetentionPolicy, now = new Date()): Promise<BackupEntry[]> {
  if (policy.keep === undefined && policy.keepDays === undefined) return [];
  const entries = await readBackupEntries(dir);
  const newestFirst = [...entries].sort((a, b) => b.time.localeCompare(a.time));
  const kept = new Set(
    newestFirst
      .filter(
        (entry, index) =>
          (policy.keep !== undefined && index < policy.keep) ||
          (policy.keepDays !== undefined && now.getTime() - Date.parse(entry.time) < policy.keepDays * 86_400_000),
      )
      .map((entry) => entry.file),
  );
  const deleted = entries.filter((entry) => !kept.has(entry.file));
  // Metadata first: an entry without its file is found missing at restore; a file without an entry would be kept forever.
  await writeBackupEntries(
    dir,
    entries.filter((entry) => kept.has(entry.file)),
  );
  for (const entry of deleted) await rm(join(dir, entry.file), { force: true });
  return deleted;
}
