import { Option, type Command } from 'commander';
import { elapsedMs, executionSummary, type TaskExecution } from '../../stores/task-scheduler/task-scheduler-model.js';
import { AdminClient } from '../admin-client.js';
import type { Run } from '../command-runner.js';
import { EXIT } from '../exit-codes.js';
import { integerIn, withAdminOptions, type AdminOptions } from '../options.js';
import { printResult } from '../output.js';
import { formatTable } from '../table.js';

interface JobsOptions extends AdminOptions {
  readonly limit?: number;
  readonly task?: string;
}

/** `dualwrite jobs`: the running process's background job runs (verifier, outbox replay rounds that did work, retention), newest first. */
export function addJobsCommand(program: Command, run: Run): void {
  withAdminOptions(
    program
      .command('jobs')
      .description(
        'recent runs of the background jobs (verifier, outbox replay rounds that did work, retention): state, start, duration, progress and result; newest first',
      )
      .addOption(new Option('--limit <n>', 'how many runs, 1-1000').argParser(integerIn(1, 1000)).default(20))
      .addOption(new Option('--task <name>', 'only runs of this task (verifier, outbox.replay, jobs.retention)')),
  ).action(
    run(async (options: JobsOptions) => {
      const query = new URLSearchParams({
        limit: String(options.limit ?? 20),
        ...(options.task ? { task: options.task } : {}),
      });
      const { body } = await AdminClient.fromOptions(options).get<{ executions: TaskExecution[] }>(
        `/admin/jobs?${query}`,
      );
      const now = new Date().toISOString();
      printResult(options.json, body, ({ executions }) =>
        executions.length === 0
          ? 'no background job runs recorded yet'
          : formatTable(
              ['task', 'state', 'started', 'duration', 'progress', 'result', 'truncated'],
              executions.map((e) => [
                e.taskName,
                e.state,
                e.startedAt ?? '',
                `${(elapsedMs(e, now) / 1000).toFixed(3)} s`,
                `${e.progress}%`,
                executionSummary(e, 60),
                e.resultTruncated ? 'yes' : '',
              ]),
            ),
      );
      return EXIT.ok;
    }),
  );
}
