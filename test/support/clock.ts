import type { Clock, IdGenerator } from '../../src/domain/time.js';

/** A clock tests control: starts at `start` and moves 1 ms per reading, so writes are ordered. */
export class ManualClock implements Clock {
  private time: number;

  constructor(private readonly start = '2026-01-01T00:00:00.000Z') {
    this.time = Date.parse(start);
  }

  now(): string {
    return new Date(this.time++).toISOString();
  }

  set(iso: string): void {
    this.time = Date.parse(iso);
  }

  reset(): void {
    this.time = Date.parse(this.start);
  }
}

/** Ids 00000000-0000-4000-8000-000000000001, ...2, ...: predictable and in creation order. */
export class SequenceIds implements IdGenerator {
  private next = 1;

  uuid(): string {
    return `00000000-0000-4000-8000-${(this.next++).toString(16).padStart(12, '0')}`;
  }

  reset(): void {
    this.next = 1;
  }
}
