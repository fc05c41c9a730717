import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

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
      const env = { DUAL_WRITE_MODE: 'dual-write', DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags };
      const first = await runtimes.open({ db: backend.current.db!, env });
      expect(first.rt.stage.current.stage).toBe('dual-write');

      const inForce = await first.rt.setFlags({ stage: 'read-shift', readPercent: 25 }, { reason: 'canary', principal: 'admin-token' });
      expect(inForce).toMatchObject({ stage: 'read-shift', readPercent: 25, source: 'file' });
      expect((await first.rt.stage.settled()).flags.stage).toBe('read-shift');
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toMatchObject({ stage: 'read-shift', readFromPostgresPercent: 25, reason: 'canary', principal: 'admin-token' });
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
      const { rt } = await runtimes.open({ db: backend.current.db!, env: { DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags } });
      await expect(rt.setFlags(requested, { reason: 'x', principal: 'test' })).rejects.toMatchObject({ name: 'ValidationError', field });
      expect(JSON.parse(await readFile(flagsFile, 'utf8'))).toEqual({ stage: 'dual-write' });
      expect(rt.stage.current.stage).toBe('dual-write');
    });

    it('requires a reason', async () => {
      const { flagsFile, lastFlags } = await folder();
      const { rt } = await runtimes.open({ db: backend.current.db!, env: { DUALWRITE_FLAGS_FILE: flagsFile, DUALWRITE_LAST_FLAGS_PATH: lastFlags } });
      await expect(rt.setFlags({ stage: 'dual-write' }, { reason: ' ', principal: 'test' })).rejects.toMatchObject({ name: 'ValidationError', field: 'reason' });
      expect(rt.stage.current.stage).toBe('memory-only');
    });

    it('is refused when the application passed its own flags', async () => {
      const { rt } = await runtimes.open({ db: backend.current.db!, stage: 'dual-write' });
      await expect(rt.setFlags({ stage: 'memory-only' }, { reason: 'rollback', principal: 'test' })).rejects.toMatchObject({ name: 'FlagSourceConflictError' });
      expect(rt.stage.current.stage).toBe('dual-write');
    });
  });
}
