import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { CI_RUNS, MAX_STEPS, programArbitrary, runProgram } from '../support/transition-model.js';

/**
 * The model-based test of stage changes and outages (test/support/transition-model.ts) at
 * the size CI runs; `npm run bench -- fuzz` runs it ten times larger.
 */

const MODES: readonly MirrorMode[] = ['sync', 'async'];

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`random programs with stage changes and outages on ${factory.name}`, () => {
    const backend = useBackend(factory);
    for (const mode of MODES) {
      it(`every acknowledged write is what the authoritative side holds, and mirrored sides end equal (${mode} mirror)`, async () => {
        await fc.assert(
          fc.asyncProperty(programArbitrary(MAX_STEPS), async (program) => {
            await backend.current.reset();
            await runProgram(backend.current.db!, mode, program);
          }),
          { numRuns: CI_RUNS },
        );
      }, 300_000);
    }
  });
}
