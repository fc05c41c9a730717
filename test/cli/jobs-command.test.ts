import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskExecution } from '../../src/stores/task-scheduler/task-scheduler-model.js';
import { request } from '../api/api-harness.js';
import { ADMIN_TOKEN, postgresAvailable, runCli, startExampleApi, type ExampleApi } from './cli-harness.js';

/**
 * `dualwrite jobs` against a running example API on real PostgreSQL: the background job
 * runs the process recorded (here, verifications), as a table for people and JSON for
 * machines, filtered by task and limited.
 */
describe.skipIf(!postgresAvailable())('dualwrite jobs', () => {
  let api: ExampleApi;
  const cli = (...args: string[]) => runCli(args, api.cliEnv);

  beforeAll(async () => {
    api = await startExampleApi();
    await request(api.served.url, 'PUT', '/projects/npm/react', { body: { description: 'UI' } });
    for (const reason of ['first check', 'second check']) {
      expect(
        (await request(api.served.url, 'POST', '/admin/verify', { token: ADMIN_TOKEN, body: { reason } })).status,
      ).toBe(200);
    }
  });
  afterAll(async () => {
    await api?.close();
  });

  it('lists recent runs as a table: task, state, started, duration, progress, result summary, truncated flag', async () => {
    const table = await cli('jobs');
    expect(table).toMatchObject({ code: 0, stderr: '' });
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^task +state +started +duration +progress +result +truncated$/);
    expect(lines.slice(2)).toHaveLength(2);
    for (const line of lines.slice(2))
      expect(line).toMatch(
        /^verifier +success +\d{4}-\d\d-\d\dT[\d:.]+Z +\d+\.\d{3} s +100% +\{"consistent":true,"seconds":/,
      );
    expect(table.stdout).not.toContain(ADMIN_TOKEN);
  });

  it('--json gives the executions as stored; --limit and --task narrow them', async () => {
    const json = await cli('jobs', '--json', '--limit', '1');
    expect(json.code).toBe(0);
    const { executions } = JSON.parse(json.stdout) as { executions: TaskExecution[] };
    expect(executions).toHaveLength(1);
    expect(executions[0]).toMatchObject({
      taskName: 'verifier',
      state: 'success',
      triggerType: 'manual',
      triggerBy: 'admin-token',
      progress: 100,
      resultTruncated: false,
      lockKey: 'task:verifier',
    });
    expect(JSON.parse(executions[0]!.result!)).toMatchObject({ consistent: true, rowsMemory: 1 });

    expect(await cli('jobs', '--task', 'outbox.replay')).toMatchObject({
      code: 0,
      stdout: 'no background job runs recorded yet\n',
    });
    expect((await cli('jobs', '--limit', '0')).code).toBe(2);
  });
});
