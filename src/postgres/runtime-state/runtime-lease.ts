import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { SqlExecutor } from '../sql-executor.js';
import { DualWriteError } from '../../domain/errors.js';

/** Options of RuntimeLease. */
export interface RuntimeLeaseOptions {
  /** How long the lease lasts without renewal (a crashed holder's lease runs out after this). Default 15000 ms. */
  readonly ttlMs?: number;
  /** How long acquire() keeps trying while another holder has it. Default ttlMs + 5000 ms (outlasts a crashed predecessor). */
  readonly waitMs?: number;
  /** Pause between tries while waiting. Default 1000 ms. */
  readonly retryMs?: number;
  /** Who holds it, for the error another process sees. Default `<host>:<pid>:<random>`. */
  readonly holder?: string;
  readonly logger?: Pick<Console, 'error'>;
}

/** Thrown when another process holds the lease. */
export class LeaseHeldError extends DualWriteError {}

const ACQUIRE = `
INSERT INTO dualwrite_runtime_lease (name, holder, acquired_at, expires_at)
VALUES ('runtime', $1, now(), now() + $2 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET
  acquired_at = CASE WHEN dualwrite_runtime_lease.holder = EXCLUDED.holder THEN dualwrite_runtime_lease.acquired_at ELSE EXCLUDED.acquired_at END,
  holder = EXCLUDED.holder,
  expires_at = EXCLUDED.expires_at
WHERE dualwrite_runtime_lease.holder = EXCLUDED.holder OR dualwrite_runtime_lease.expires_at < now()
RETURNING holder`;

/**
 * One runtime per database: the process that mirrors memory into it holds a row lease,
 * renewed at a third of its lifetime on PostgreSQL's clock. A second process is refused
 * (after waiting out a crashed holder's lease), because its memory would hold other writes.
 */
export class RuntimeLease {
  readonly holder: string;
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | undefined;
  private renewalFailing = false;

  constructor(
    private readonly db: SqlExecutor,
    private readonly options: RuntimeLeaseOptions = {},
  ) {
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.ttlMs = options.ttlMs ?? 15_000;
  }

  /** Takes the lease, waiting up to waitMs for another holder's to run out; then renews it until release(). */
  async acquire(): Promise<void> {
    const deadline = Date.now() + (this.options.waitMs ?? this.ttlMs + 5000);
    while (!(await this.firstTake())) {
      if (Date.now() >= deadline) {
        const [row] = await this.db.query<{ holder: string; expires_at: string }>(
          "SELECT holder, expires_at::text FROM dualwrite_runtime_lease WHERE name = 'runtime'",
        );
        throw new LeaseHeldError(
          `another dualwrite process (${row?.holder ?? 'unknown'}, lease until ${row?.expires_at ?? '?'}) runs on this database; ` +
            'each process keeps its own in-memory stores, so only one may mirror into one database',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.retryMs ?? 1000));
    }
    this.timer = setInterval(() => void this.renew(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Gives the lease up; if PostgreSQL cannot be reached it runs out by itself after ttlMs. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.db
      .query("DELETE FROM dualwrite_runtime_lease WHERE name = 'runtime' AND holder = $1", [this.holder])
      .catch(() => undefined);
  }

  private async tryTake(): Promise<boolean> {
    return (await this.db.query(ACQUIRE, [this.holder, this.ttlMs])).length > 0;
  }

  /** The first take, whose failure names what could not be reached. */
  private async firstTake(): Promise<boolean> {
    try {
      return await this.tryTake();
    } catch (error) {
      throw new Error(
        `dualwrite: cannot take the runtime lease in PostgreSQL (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
  }

  private async renew(): Promise<void> {
    try {
      if (!(await this.tryTake()))
        this.options.logger?.error(
          `dualwrite: runtime lease of ${this.holder} was taken by another process; two processes are mirroring into one database`,
        );
      this.renewalFailing = false;
    } catch (error) {
      // PostgreSQL unreachable: nobody else can take the lease through it either; renewal
      // retries, and the first failure of a run is logged.
      if (!this.renewalFailing)
        this.options.logger?.error(
          `dualwrite: runtime lease renewal failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      this.renewalFailing = true;
    }
  }
}
