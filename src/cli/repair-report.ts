import type { RepairAnswer } from '../api/admin-routes.js';
import { EXIT } from './exit-codes.js';

/** One line for people: what the repairs did. */
export function formatRepairs(repairs: RepairAnswer['repairs']): string {
  const line = `repairs: ${repairs.repaired} repaired, ${repairs.skipped_newer} skipped (a newer write landed after the comparison), ${repairs.already_equal} already equal`;
  return repairs.skipped_newer > 0 ? `${line}\nrun dualwrite verify to see whether the skipped ones still differ` : line;
}

/** 0 when nothing was left differing (consistent, or every difference repaired); 1 when a repair was skipped. */
export function repairExitCode(answer: RepairAnswer): number {
  return answer.consistent || answer.repairs.skipped_newer === 0 ? EXIT.ok : EXIT.failed;
}
