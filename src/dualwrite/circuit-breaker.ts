/** Options of CircuitBreaker. */
export interface CircuitBreakerOptions {
  /** Pause after a failure before one call may probe the target again. Default 1000 ms. */
  readonly probeMs?: number;
  /** Milliseconds now; injected so tests move time instead of waiting. Default Date.now. */
  readonly now?: () => number;
  /** Called when the target stops answering (closed -> open) and when it answers again (-> closed), with how long it was out. */
  readonly onChange?: (state: 'open' | 'closed', outageMs: number) => void;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Whether to try a target that just failed. Closed: every call goes. After a failure it
 * opens: calls are refused (the caller journals instead of waiting on a dead target)
 * until probeMs have passed; then one call probes (half-open). Its success closes the
 * circuit, its failure opens it for another probeMs. A target that answers, even with a
 * rejection, is reachable: that counts as success.
 */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private openedAt = 0;
  private outageStartedAt = 0;
  private readonly probeMs: number;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions = {}) {
    this.probeMs = options.probeMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.current;
  }

  /**
   * True when a call may go now; otherwise true once per probeMs (the probe). A probe whose
   * outcome was never reported does not hold the circuit: the next one goes probeMs later.
   */
  allow(): boolean {
    if (this.current === 'closed') return true;
    if (this.now() - this.openedAt < this.probeMs) return false;
    this.current = 'half-open';
    this.openedAt = this.now();
    return true;
  }

  succeeded(): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    this.options.onChange?.('closed', this.now() - this.outageStartedAt);
  }

  failed(): void {
    const wasClosed = this.current === 'closed';
    this.current = 'open';
    this.openedAt = this.now();
    if (!wasClosed) return;
    this.outageStartedAt = this.openedAt;
    this.options.onChange?.('open', 0);
  }
}
