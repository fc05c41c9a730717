import type { Stage } from './stage.js';

/** What operators set: the stage and the share of keyed reads sent to PostgreSQL. */
export interface MigrationFlags {
  readonly stage: Stage;
  /** 0-100; used in read-shift (and, with dual-write, it means read-shift). */
  readonly readPercent: number;
  /** Group id of the sticky rollout (Unleash's groupId), so buckets match Unleash's. */
  readonly rolloutGroup: string;
}

/** Whether two flags move writes and reads alike: the same stage, and in read-shift the same share of reads. */
export function sameMove(a: MigrationFlags, b: MigrationFlags): boolean {
  return a.stage === b.stage && (a.stage !== 'read-shift' || a.readPercent === b.readPercent);
}

/** The flags in force after safety rules: what the DualWriteStore routes by. */
export interface EffectiveFlags extends MigrationFlags {
  /** Which source they came from ("default" when none had flags). */
  readonly source: string;
  /** Set when the requested flags were unsafe and a safe behaviour is used instead. */
  readonly refused?: string;
}

/**
 * One place flags come from. current() is the last flags the source produced, or
 * undefined if it never produced any; a source that loses its backend keeps returning
 * its last known flags.
 */
export interface FlagSource {
  readonly name: string;
  current(): MigrationFlags | undefined;
  /** Calls `listener` after current() changed; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

/**
 * What the flag layer records about itself (DualWriteMetrics, in a runtime): the flags in
 * force, read whenever they are wanted; each refusal of a FlagState's safety rules; each
 * failure of a flag source.
 */
export interface FlagRecorder {
  /** Where the flags in force are read from from now on. */
  flagsInForce(read: () => EffectiveFlags): void;
  /** A safety rule refused the requested flags for `reason`, and a safe behaviour is used instead. */
  flagsRefused(reason: string): void;
  /** Flag source `source` failed; its last known flags stay in force. */
  flagSourceFailed(source: string): void;
}

/** What reads the flags in force and follows their changes (a FlagState). */
export interface FlagReader {
  readonly current: EffectiveFlags;
  subscribe(listener: () => void): () => void;
}
