import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';
import { readForEvidence, useTestRuntimes } from '../support/runtimes.js';

/**
 * An operator sets the stage through the runtime (the admin API and CLI call setFlags): the
 * flags file is rewritten, with who and why, and is in force at once; it ranks above env,
 * so the change outlives a restart; bad values name the field and change nothing; flags
 * owned by Unleash or by the application are refused.
 */

for (const factory of availableBackends(['pglite'])) {
  describe(`operator flags on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    const folder = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-operator-flags-'));
      runtimes.defer(() => rm(dir, { recursive: true, force: true }));
      return { flagsFile: join(dir, 'flags.json'), lastFlags: join(dir, 'last-flags.json') };
    };

    it('writes the flags file with who and why, puts the stage in force, and a restart keeps it over env', async () => {
      const { flagsFile, lastFlags } = await folder();
      const env = {
        DUAL_WRITE_MODE: 'dual-write',
        DUALWRITE_FLAGS_FILE: flagsFile,
        DUALWRITE_LAST_FLAGS_PATH: lastFlags,
      };
      const first = await runtimes.open({ db: backend.current.db!, env, shadow: { sampleRate: 1 } });
      expect(first.rt.stage.current.stage).toBe('dual-write');

      // Reads move to PostgreSQL only on evidence: reads compared with PostgreSQL, and a clean verification.
      await readForEvidence(first.rt);
      expect((await first.rt.verifyNow({ reason: 'before the canary', principal: 'alice' }))!.consistent).toBe(true);
      const inForce = await first.rt.setFlags(
        { stage: 'read-shift', readPercent: 25 },
        { reason: 'canary', principal: 'admin-token' },
      );
      expect(inForce).toMatchObject({ stage: 'read-shift', readPercent: 25, source: 'file' });
      expect((await first.rt.stage.settled()).flags.stage).toBe('read-shift');
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toMatchObject({
        stage: 'read-shift',
        readFromPostgresPercent: 25,
        reason: 'canary',
        principal: 'admin-token',
      });
      await first.rt.close();

      const restarted = await runtimes.open({ db: backend.current.db!, env });
      expect(restarted.rt.flags.current).toMatchObject({ stage: 'read-shift', readPercent: 25, source: 'file' });
    });

    it.each([
      [{ stage: 'sideways' }, 'stage'],
      [{ stage: undefined }, 'stage'],
      [{ stage: 'read-shift', readPercent: 101 }, 'readPercent'],
      [{ stage: 'read-shift', readPercent: 'ten' }, 'readPercent'],
    ])('rejects %j naming %s, leaving the flags file as it was', async (requested, field) => {
      const { flagsFile, lastFlags } = await folder();
      await writeFile(flagsFile, JSON.stringify({ stage: 'dual-write' }));
      const { rt } = await runtimes.open({
        db: backend.current.db!,
        env: { DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags },
      });
      await expect(rt.setFlags(requested, { reason: 'x', principal: 'test' })).rejects.toMatchObject({
        name: 'ValidationError',
        field,
      });
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toEqual({ stage: 'dual-write' });
      expect(rt.stage.current.stage).toBe('dual-write');
    });

    it('requires a reason', async () => {
      const { flagsFile, lastFlags } = await folder();
      const { rt } = await runtimes.open({
        db: backend.current.db!,
        env: { DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags },
      });
      await expect(rt.setFlags({ stage: 'dual-write' }, { reason: ' ', principal: 'test' })).rejects.toMatchObject({
        name: 'ValidationError',
        field: 'reason',
      });
      expect(rt.stage.current.stage).toBe('memory-only');
    });

    it('refuses an advance the evidence does not support, naming the check; force overrides it, and both are audited', async () => {
      const { flagsFile, lastFlags } = await folder();
      const { rt } = await runtimes.open({
        db: backend.current.db!,
        env: { DUAL_WRITE_MODE: 'dual-write', DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags },
      });
      const alice = { uid: 'alice', username: 'alice', type: 'user' as const };
      await expect(
        rt.setFlags({ stage: 'read-shift', readPercent: 10 }, { reason: 'canary', principal: alice }),
      ).rejects.toMatchObject({
        name: 'EvidenceRefusedError',
        message: expect.stringMatching(
          /refusing to advance from dual-write to read-shift 10%: verification: no verification has completed/,
        ),
      });
      expect(rt.stage.current.stage).toBe('dual-write');
      expect(
        (await rt.judge({ stage: 'read-shift', readPercent: 10 })).checks.find(
          (check) => check.name === 'verification',
        )!.ok,
      ).toBe(false);

      await rt.setFlags(
        { stage: 'read-shift', readPercent: 10 },
        { reason: 'incident drill', principal: alice, force: true, requestId: 'req-7' },
      );
      expect((await rt.stage.settled()).flags).toMatchObject({ stage: 'read-shift', readPercent: 10 });
      // A step back needs no evidence.
      await rt.setFlags({ stage: 'dual-write' }, { reason: 'drill over', principal: alice });
      expect((await rt.stage.settled()).flags.stage).toBe('dual-write');

      // The database outlives the test (the trail cannot be truncated): only alice's events are this test's.
      const alicesEvents = async () =>
        (await rt.audit.list({ resourceType: 'stage' })).filter((event) => event.principal.uid === 'alice').reverse();
      // Audit entries are written after the change they record.
      const events = await eventually(async () => {
        const found = await alicesEvents();
        expect(found.length).toBeGreaterThanOrEqual(3);
        return found;
      });
      expect(
        events.map((event) => [event.action, event.from, event.to, event.principal.username, event.reason]),
      ).toEqual([
        ['stage.forced', 'dual-write', 'read-shift 10%', 'alice', 'incident drill'],
        ['stage.change', 'dual-write', 'read-shift 10%', 'alice', 'incident drill'],
        ['stage.change', 'read-shift 10%', 'dual-write', 'alice', 'drill over'],
      ]);
      expect(events[0]!.requestId).toBe('req-7');
      expect(String(events[0]!.data!.refusal)).toMatch(/^verification: no verification has completed/);
    });

    it('a change a safety rule refuses leaves nothing behind, even forced: the flags file, the stage in force and the audit agree, and a later resync does not apply it', async () => {
      const { flagsFile, lastFlags } = await folder();
      const env = { DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags };
      const { rt } = await runtimes.open({ db: backend.current.db!, env });
      const bob = { uid: 'bob-safety', username: 'bob', type: 'user' as const };
      await expect(
        rt.setFlags({ stage: 'read-shift', readPercent: 10 }, { reason: 'canary', principal: bob, force: true }),
      ).rejects.toMatchObject({
        name: 'StageChangeRefusedError',
        message: expect.stringMatching(
          /^REFUSED: staying in memory-only, not moving to read-shift 10%: .*resync PostgreSQL first/,
        ),
      });
      expect(rt.stage.current.stage).toBe('memory-only');
      expect(rt.flags.current.stage).toBe('memory-only');
      await expect(readFile(flagsFile, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });

      // Starting dual-write and resyncing is what the rule asks for; reads still stay in memory until someone asks.
      await rt.setFlags({ stage: 'dual-write' }, { reason: 'start mirroring', principal: bob });
      await rt.resyncPostgres();
      await rt.stage.settled();
      expect(rt.stage.current).toMatchObject({ stage: 'dual-write', readPercent: 0 });
      const events = await eventually(async () => {
        const found = (await rt.audit.list({ resourceType: 'stage' })).filter(
          (event) => event.principal.uid === 'bob-safety',
        );
        expect(found).not.toHaveLength(0);
        return found;
      });
      expect(events.map((event) => [event.action, event.from, event.to])).toEqual([
        ['stage.change', 'memory-only', 'dual-write'],
      ]);
    });

    it('a change whose barrier cannot complete is refused and undone: the flags file goes back to the stage in force and nothing moves later', async () => {
      const { flagsFile, lastFlags } = await folder();
      const env = {
        DUAL_WRITE_MODE: 'dual-write',
        DUALWRITE_FLAGS_FILE: flagsFile,
        DUALWRITE_LAST_FLAGS_PATH: lastFlags,
      };
      const { rt } = await runtimes.open({ db: backend.current.db!, env, transitions: { timeoutMs: 50, retryMs: 20 } });
      // A write that never finishes holds the barrier past its timeout.
      const ticket = await rt.stage.enter();
      try {
        await expect(
          rt.setFlags({ stage: 'memory-only' }, { reason: 'rollback', principal: 'carol' }),
        ).rejects.toMatchObject({
          name: 'StageChangeRefusedError',
          message: expect.stringMatching(
            /^REFUSED: staying in dual-write, not moving to memory-only: writes acknowledged before the change did not settle/,
          ),
        });
      } finally {
        ticket.release();
      }
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toMatchObject({
        stage: 'dual-write',
        principal: 'carol',
        reason: expect.stringMatching(/^memory-only was refused/),
      });
      // Time passing is the point: five retry intervals on, still nothing moved by itself.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await rt.stage.settled()).flags.stage).toBe('dual-write');
      expect(rt.stage.state.refused).toBeUndefined();
    });

    it('records no stage change from a stage to itself', async () => {
      const { flagsFile, lastFlags } = await folder();
      const env = {
        DUAL_WRITE_MODE: 'dual-write',
        DUALWRITE_FLAGS_FILE: flagsFile,
        DUALWRITE_LAST_FLAGS_PATH: lastFlags,
      };
      const { rt } = await runtimes.open({ db: backend.current.db!, env });
      const dave = { uid: 'dave-same', username: 'dave', type: 'user' as const };
      // From env to the same stage in the file: the source changes, the stage does not.
      await rt.setFlags({ stage: 'dual-write' }, { reason: 'pin it in the file', principal: dave });
      await rt.setFlags({ stage: 'memory-only' }, { reason: 'back', principal: dave });
      const events = await eventually(async () => {
        const found = (await rt.audit.list({ resourceType: 'stage' })).filter(
          (event) => event.principal.uid === 'dave-same',
        );
        expect(found).not.toHaveLength(0);
        return found;
      });
      expect(events.map((event) => [event.from, event.to])).toEqual([['dual-write', 'memory-only']]);
    });

    it('is refused when the application passed its own flags', async () => {
      const { rt } = await runtimes.open({ db: backend.current.db!, stage: 'dual-write' });
      await expect(
        rt.setFlags({ stage: 'memory-only' }, { reason: 'rollback', principal: 'test' }),
      ).rejects.toMatchObject({ name: 'FlagSourceConflictError' });
      expect(rt.stage.current.stage).toBe('dual-write');
    });
  });
}
