/**
 * The durable run a {@link Worker} executes, as the graph's checkpointer sees it: the worker puts it in the
 * invoke config (`configurable.__cairn_run`, a key LangGraph keeps out of checkpoint metadata) and CairnSaver
 * fences every put and putWrites with its lease, and stops the run when the server refuses one.
 */
import type { RunLease } from "./gen/cairn/v1/checkpoint_store.js";

export const RUN_SCOPE_KEY = "__cairn_run";

export class RunScope {
  /** Why the run must stop (a RunStoppedError, or the cancellation of the worker); undefined while it may go on. */
  reason: unknown;
  /** Aborted when the run must stop or its step timed out: the graph's invoke signal. */
  readonly controller = new AbortController();
  /** The step that ran past the worker's nodeTimeoutMs (a NodeTimeout); undefined while none did. */
  timedOut: Error | undefined;
  /** Activity records read or written in this attempt: checkpoint id -> activity key -> result (see activity()). */
  readonly activities = new Map<string, Map<string, unknown>>();

  constructor(
    readonly runId: string,
    public lease: RunLease,
  ) {}

  get stopped(): boolean {
    return this.reason !== undefined;
  }

  /** Records the first reason to stop and aborts the graph. */
  stop(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller.abort(reason);
  }

  /** Ends the attempt: the step ran too long. Not a stop (the attempt fails and may be retried). */
  timeout(error: Error): void {
    if (this.reason !== undefined || this.timedOut !== undefined) return;
    this.timedOut = error;
    this.controller.abort(error);
  }
}

/** The run scope of a checkpointer call's config, if the call comes from a Worker's run. */
export function runScopeOf(config: { configurable?: Record<string, unknown> } | undefined): RunScope | undefined {
  const scope = config?.configurable?.[RUN_SCOPE_KEY];
  return scope instanceof RunScope ? scope : undefined;
}
