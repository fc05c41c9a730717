import type { SqliteDatabase } from '../../src/sqlite/better-sqlite3.js';
import { applyDispatchSchema } from '../../src/stores/dispatch/sqlite-dispatch-database.js';

/** Options of generateDispatchDb(). */
export interface GenerateDispatchDbOptions {
  /** Tasks to write; the other tables get rows in proportion (see generateDispatchDb). */
  readonly tasks: number;
  /** Event ids start after this one (AUTOINCREMENT ids of a database that has run a while). Default 0. */
  readonly firstEventId?: number;
}

export interface GeneratedCounts {
  readonly tasks: number;
  readonly file_locks: number;
  readonly nodes: number;
  readonly events: number;
  readonly node_reputation: number;
  readonly peer_validations: number;
}

const STATUSES = ['pending', 'claimed', 'running', 'completed', 'failed', 'deadletter'] as const;
const NODES = 8;
const EPOCH = Date.UTC(2026, 0, 1);

/** Dates in the forms the dispatch app and SQLite write: SQLite's datetime(), Python's isoformat() (microseconds, with and without a zone), ISO with Z. */
function dateText(i: number, form: number): string {
  const iso = new Date(EPOCH + i * 1000).toISOString();
  switch (form % 4) {
    case 0:
      return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
    case 1:
      return `${iso.slice(0, 19)}.${String((i * 7919) % 1_000_000).padStart(6, '0')}`;
    case 2:
      return `${iso.slice(0, 23)}${String(i % 1000).padStart(3, '0')}+00:00`;
    default:
      return iso;
  }
}

/**
 * Writes a dispatch database as the dispatch app leaves it after a while (schema applied if
 * missing): `tasks` tasks in every status, with dates in every form, JSON lists, durations
 * and epoch columns; a file lock for every third task; 8 nodes with their reputation; two
 * events per task; a peer validation for every fifth task. Deterministic: the same options
 * write the same rows. One transaction.
 */
export function generateDispatchDb(db: SqliteDatabase, options: GenerateDispatchDbOptions): GeneratedCounts {
  applyDispatchSchema(db);
  const taskId = (i: number) => `T${String(i).padStart(7, '0')}`;
  const node = (i: number) => `node-${i % NODES}`;
  const insertTask = db.prepare(
    `INSERT INTO tasks (id, project, spec_file, spec_hash, status, node, pid, attempt, started_at, completed_at, heartbeat_at, error, log_file,
       duration_seconds, depends_on, modifies, priority, lease_owner, lease_expires_at, updated_at, artifact_hash, loc_added, loc_removed, files_changed)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertLock = db.prepare('INSERT INTO file_locks (file_path, task_id, locked_at) VALUES (?, ?, ?)');
  const insertNode = db.prepare(
    'INSERT INTO nodes (name, ssh_host, slots, running_count, last_seen) VALUES (?, ?, ?, ?, ?)',
  );
  const insertEvent = db.prepare(
    'INSERT INTO events (id, timestamp, task_id, event_type, node, details) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insertReputation = db.prepare(
    'INSERT INTO node_reputation (node, score, total_tasks, passed_validations, last_updated) VALUES (?, ?, ?, ?, ?)',
  );
  const insertValidation = db.prepare(
    'INSERT INTO peer_validations (task_id, project, executor_node, validator_node, status, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const counts = { tasks: 0, file_locks: 0, nodes: 0, events: 0, node_reputation: 0, peer_validations: 0 };
  let eventId = options.firstEventId ?? 0;
  db.transaction(() => {
    for (let n = 0; n < NODES; n++) {
      insertNode.run(node(n), `host-${n}.example`, 8, n % 3, dateText(n, n));
      insertReputation.run(node(n), 100 - n, n * 10, n * 9, dateText(n, n + 1));
      counts.nodes++;
      counts.node_reputation++;
    }
    for (let i = 0; i < options.tasks; i++) {
      const status = STATUSES[i % STATUSES.length]!;
      const started = status === 'pending' ? null : dateText(i, i);
      const finished = status === 'completed' || status === 'failed' || status === 'deadletter';
      insertTask.run(
        taskId(i),
        `project-${i % 7}`,
        `specs/${taskId(i)}.md`,
        i % 2 === 0 ? `sha256:${(i * 2654435761) % 4294967296}` : null,
        status,
        status === 'pending' ? null : node(i),
        status === 'running' ? 10_000 + (i % 50_000) : null,
        i % 4,
        started,
        finished ? dateText(i + 60, i + 1) : null,
        status === 'running' ? dateText(i + 30, i + 2) : null,
        status === 'failed' ? `exit code ${i % 255}\nsee "log" \\ tab\there` : null,
        `logs/${taskId(i)}.log`,
        finished ? (i % 1000) / 7 : null,
        JSON.stringify(i > 0 ? [taskId(i - 1)] : []),
        JSON.stringify([`src/module-${i % 101}.ts`, `docs/${i % 13}.md`]),
        i % 3,
        status === 'claimed' ? node(i) : null,
        status === 'claimed' ? Math.floor(EPOCH / 1000) + i + 300 : null,
        Math.floor(EPOCH / 1000) + i,
        finished ? `sha1:${i.toString(16)}` : null,
        i % 400,
        i % 90,
        i % 12,
      );
      counts.tasks++;
      if (i % 3 === 0) {
        insertLock.run(`src/module-${i % 101}.ts`, taskId(i), dateText(i, i + 3));
        counts.file_locks++;
      }
      for (const type of ['created', status]) {
        insertEvent.run(
          ++eventId,
          dateText(i, i + (type === 'created' ? 0 : 2)),
          taskId(i),
          type,
          status === 'pending' ? null : node(i),
          `{"attempt": ${i % 4}}`,
        );
        counts.events++;
      }
      if (i % 5 === 0) {
        insertValidation.run(
          taskId(i),
          `project-${i % 7}`,
          node(i),
          node(i + 1),
          i % 10 === 0 ? 'passed' : 'pending',
          dateText(i + 90, i + 1),
        );
        counts.peer_validations++;
      }
    }
  })();
  return counts;
}
