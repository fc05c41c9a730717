import { describe, expect, it } from 'vitest';
import { FlagSourceConflictError } from '../../flags/migration-flags.js';
import { ApiError } from '../../src/api/errors.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';
import {
  ConflictError,
  DualWriteError,
  NotFoundError,
  RequestRefusedError,
  StoreError,
  TransitionError,
  UnavailableError,
  ValidationError,
} from '../../src/domain/errors.js';
import { FencedError, SourceReadError } from '../../src/dualwrite/mirror.js';
import { SnapshotError } from '../../src/memory/snapshot-file.js';
import { MigrationError } from '../../src/postgres/migrations.js';
import { DatabaseUnreachableError } from '../../src/postgres/open-database.js';
import { PgToolError } from '../../src/postgres/operations/pg-tools.js';
import { RestoreRefusedError } from '../../src/postgres/operations/restore-refused.js';
import { LeaseHeldError } from '../../src/postgres/runtime-state/runtime-lease.js';
import { ConfigError } from '../../src/runtime/config.js';
import { EvidenceRefusedError } from '../../src/runtime/evidence-gate.js';
import { StageChangeRefusedError } from '../../src/runtime/stage-change-refused.js';
import { SqliteUnavailableError } from '../../src/sqlite/better-sqlite3.js';
import { InvalidRowError } from '../../src/stores/dispatch/sqlite-table.js';
import { BackfillConflictError } from '../../verifier/backfill.js';
import { RepairRunNotFoundError } from '../../verifier/repair.js';

const dualWrite = { stage: 'dual-write', readPercent: 0, rolloutGroup: 'g' } as const;
const readShift = { stage: 'read-shift', readPercent: 10, rolloutGroup: 'g' } as const;
const down = new Error('connect ECONNREFUSED');

/** One of each error class, the family it belongs to, and the name callers and logs see. */
const ERRORS: readonly [name: string, error: Error, family: abstract new (...args: never[]) => Error][] = [
  ['ValidationError', new ValidationError('limit', 'must be positive'), StoreError],
  ['NotFoundError', new NotFoundError('id', 'x'), StoreError],
  ['ConflictError', new ConflictError('id', 'x'), StoreError],
  ['TransitionError', new TransitionError('open', 'done'), StoreError],
  ['UnavailableError', new UnavailableError('postgres', down), DualWriteError],
  ['FlagSourceConflictError', new FlagSourceConflictError('Unleash owns the flags'), RequestRefusedError],
  [
    'EvidenceRefusedError',
    new EvidenceRefusedError(dualWrite, readShift, { advance: true, allowed: false, checks: [], refusal: 'no' }),
    RequestRefusedError,
  ],
  ['StageChangeRefusedError', new StageChangeRefusedError(dualWrite, readShift, 'a rule'), RequestRefusedError],
  ['RestoreRefusedError', new RestoreRefusedError('the backup fails its checks'), RequestRefusedError],
  ['SnapshotError', new SnapshotError('/tmp/s.json', 'has no entities'), DualWriteError],
  ['MigrationError', new MigrationError('001 was edited'), DualWriteError],
  ['DatabaseUnreachableError', new DatabaseUnreachableError('postgres://db/app', down), DualWriteError],
  ['LeaseHeldError', new LeaseHeldError('api-1 holds the lease'), DualWriteError],
  ['PgToolError', new PgToolError('pg_dump not found'), DualWriteError],
  ['SqliteUnavailableError', new SqliteUnavailableError(down), DualWriteError],
  ['InvalidRowError', new InvalidRowError('tasks', ['t1'], 'status', 'not a status'), DualWriteError],
  ['FencedError', new FencedError('memory is authoritative'), DualWriteError],
  ['SourceReadError', new SourceReadError('memory', down), DualWriteError],
  ['BackfillConflictError', new BackfillConflictError('graph.projects'), DualWriteError],
  ['RepairRunNotFoundError', new RepairRunNotFoundError('run-1'), DualWriteError],
  ['ApiError', new ApiError(401, 'the token is wrong'), DualWriteError],
  ['CliError', new CliError(EXIT.usage, 'bad option'), DualWriteError],
];

describe('the error hierarchy', () => {
  it.each(ERRORS)('%s is a DualWriteError of its family, named after its class', (name, error, family) => {
    expect(error).toBeInstanceOf(DualWriteError);
    expect(error).toBeInstanceOf(family);
    expect(error.name).toBe(name);
    expect(error.constructor.name).toBe(name);
    expect(String(error)).toMatch(new RegExp(`^${name}: `));
  });

  it('keeps the families apart: an unreachable backend says nothing about the input, a refusal nothing about a store', () => {
    const families = [StoreError, UnavailableError, RequestRefusedError];
    for (const [name, error] of ERRORS) {
      const memberships = families.filter((family) => error instanceof family);
      expect(memberships.length, name).toBeLessThanOrEqual(1);
    }
  });

  it('keeps the cause of an error that wraps one', () => {
    expect(new UnavailableError('postgres', down).cause).toBe(down);
    expect(new SourceReadError('postgres', down).cause).toBe(down);
    expect(new DatabaseUnreachableError('postgres://db/app', down).cause).toBe(down);
    expect(new SqliteUnavailableError(down).cause).toBe(down);
  });

  it('leaves ConfigError a TypeError, as a mistake in what the caller passed', () => {
    const error = new ConfigError('DATABASE_URL', 'is not set');
    expect(error).toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(DualWriteError);
    expect(error).toMatchObject({ name: 'ConfigError', message: 'DATABASE_URL is not set', variable: 'DATABASE_URL' });
  });
});
