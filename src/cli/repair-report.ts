import type { RepairAnswer } from '../api/admin-routes.js';
import { EXIT } from './exit-codes.js';

/** For people: what the repairs did, what was held back and how to confirm it, and how to undo the run. */
export function formatRepairs(repairs: RepairAnswer['repairs'], runId: string | null): string {
  const lines = [
    `repairs: ${repairs.repaired} repaired, ${repairs.skipped_newer} skipped (a newer write landed after the comparison), ${repairs.already_equal} already equal`,
  ];
  if (repairs.skipped_newer > 0) lines.push('run dualwrite verify to see whether the skipped ones still differ');
  if (repairs.withheld_delete > 0) {
    lines.push(
      `WITHHELD: ${repairs.withheld_delete} records only the non-authoritative side holds were not deleted; if the authoritative side is right about them, run again with --allow-deletes ${repairs.withheld_delete}`,
    );
  }
  if (runId && repairs.repaired > 0) lines.push(`undo with: dualwrite repair undo ${runId} --reason "..."`);
  return lines.join('\n');
}

/** 0 when nothing was left differing (consistent, or every difference repaired); 1 when a repair was skipped or a deletion withheld. */
export function repairExitCode(answer: RepairAnswer): number {
  return answer.consistent || (answer.repairs.skipped_newer === 0 && answer.repairs.withheld_delete === 0)
    ? EXIT.ok
    : EXIT.failed;
}
