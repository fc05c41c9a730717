import type { Command } from 'commander';
import type { Run } from '../command-runner.js';
import { addDbBackupCommand } from './db-backup.js';
import { addDbHealthCommand } from './db-health.js';
import { addDbInfoCommand } from './db-info.js';
import { addDbResetTestCommand } from './db-reset-test.js';
import { addDbRestoreCommand } from './db-restore.js';

/** `dualwrite db ...`: operating the PostgreSQL of DATABASE_URL directly (health, info, backup, restore, reset-test). */
export function addDbCommands(program: Command, run: Run): void {
  const db = program
    .command('db')
    .description('operate the PostgreSQL database of DATABASE_URL: health, info, backup, restore, reset-test');
  addDbHealthCommand(db, run);
  addDbInfoCommand(db, run);
  addDbBackupCommand(db, run);
  addDbRestoreCommand(db, run);
  addDbResetTestCommand(db, run);
}
