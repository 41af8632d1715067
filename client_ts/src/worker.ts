/**
 * Worker: executes durable runs of one compiled LangGraph.js graph, taken from a Cairn queue.
 *
 *     import { CairnSaver, Worker } from "@cairn/client/langgraph";
 *     const graph = builder.compile({ checkpointer: new CairnSaver(client) });
 *     await new Worker("orders", graph).run({ signal });   // elsewhere: client.startRun("order-7", input, { queue: "orders" })
 *
 * The worker claims a run (long-polling its queue), heartbeats in the background, and invokes the graph on the
 * run's thread with the run's scope in its config, so that CairnSaver fences every put and putWrites with the
 * run's lease (and tags the checkpoints with metadata `run_id`). A run found half-done (its worker crashed) resumes from
 * the thread's last checkpoint (LangGraph's `invoke(null)`): finished steps are not run again. An input
 * `{"__command__": {"resume": v, "update": {...}}}` resumes an interrupted thread with a LangGraph Command.
 *
 * Stopping: when a heartbeat or a fenced write is refused ({@link RunStoppedError}: the run was cancelled, timed
 * out, or another worker holds it now) the worker aborts the invoke's `signal`: LangGraph stops at the step
 * boundary, and nodes that pass `config.signal` on stop at once; nothing more is written for the run. A node
 * error ends the attempt with failRun, retryable per `retryable` (timeouts and Node's system errors by default).
 */
import { hostname } from "node:os";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { CairnClient } from "./client.js";
import { NodeTimeout } from "./activity.js";
import { CairnError, RunStoppedError } from "./errors.js";
import { RUN_SCOPE_KEY, RunScope } from "./run-scope.js";
import { type Claim, decodeJson, type Run } from "./runs.js";

/** A run input holding this key resumes an interrupt: `{"__command__": {"resume": ..., "update": {...}}}`. */
export const COMMAND_KEY = "__command__";

/** What the worker needs of a compiled LangGraph.js graph (CompiledStateGraph has it). */
export interface DurableGraph {
  checkpointer?: unknown;
  invoke(input: unknown, config: RunnableConfig): Promise<unknown>;
  getState(config: RunnableConfig): Promise<{
    values: unknown;
    next: string[];
    tasks: ReadonlyArray<{ name: string; interrupts: ReadonlyArray<{ id?: string; value?: unknown }> }>;
    config: RunnableConfig;
    metadata?: Record<string, unknown>;
  }>;
}

export interface WorkerOptions {
  /** The client to claim and report with; default: the client of the graph's CairnSaver. */
  client?: CairnClient;
  /** Recorded on each attempt; default host:pid:random. */
  workerId?: string;
  /** How long a claim lasts without a heartbeat: a crashed worker's run is taken over after it. Default 30000. */
  leaseMs?: number;
  /** Interval of heartbeats; default a third of the lease. */
  heartbeatMs?: number;
  /** Long-poll of each claim. Default 10000. */
  waitMs?: number;
  /**
   * Limit of each step (its nodes run at once); default none. A longer step fails the attempt with a
   * {@link NodeTimeout} (retryable by default, so the run's RetryPolicy retries it): the invoke's signal is aborted
   * with it, which LangGraph and nodes that pass `config.signal` on honour at once.
   */
  nodeTimeoutMs?: number;
  /** Which node errors make failRun retryable (the run's RetryPolicy decides the retry). Default {@link defaultRetryable}. */
  retryable?: (err: unknown) => boolean;
}

const SYSTEM_ERRORS = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH"]);

/** Timeouts and network errors are worth another attempt (as the Python worker treats TimeoutError and OSError). */
export function defaultRetryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return err instanceof NodeTimeout || err.name === "TimeoutError" || (typeof code === "string" && SYSTEM_ERRORS.has(code));
}

export class Worker {
  readonly queue: string;
  readonly graph: DurableGraph;
  readonly client: CairnClient;
  readonly workerId: string;
  /** Why the last executed run was stopped (LEASE_LOST, RUN_CANCELLED, ...); "" when it was not. */
  lastStopReason = "";
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly waitMs: number;
  private readonly retryable: (err: unknown) => boolean;
  private readonly nodeTimeoutMs: number | undefined;
  private stopping = false;

  constructor(queue: string, graph: DurableGraph, options: WorkerOptions = {}) {
    const client = options.client ?? (graph.checkpointer as { client?: CairnClient } | undefined)?.client;
    if (!client) throw new TypeError("Worker needs a graph compiled with a CairnSaver checkpointer, or options.client");
    this.queue = queue;
    this.graph = graph;
    this.client = client;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${Math.random().toString(16).slice(2, 10)}`;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? this.leaseMs / 3;
    this.waitMs = options.waitMs ?? 10_000;
    this.retryable = options.retryable ?? defaultRetryable;
    this.nodeTimeoutMs = options.nodeTimeoutMs;
  }

  /** Take no new run after the current one (`run` resolves). */
  stop(): void {
    this.stopping = true;
  }

  /** Claims and executes runs until `stop()`, the signal, or `maxRuns` runs; resolves with how many it executed. */
  async run(options: { maxRuns?: number; signal?: AbortSignal } = {}): Promise<number> {
    let done = 0;
    while (!this.stopping && !options.signal?.aborted && (options.maxRuns === undefined || done < options.maxRuns)) {
      try {
        if ((await this.runOnce()) !== undefined) done++;
      } catch (err) {
        if (!(err instanceof CairnError)) throw err;
        await new Promise((r) => setTimeout(r, 1000)); // the server is away: try again shortly
      }
    }
    return done;
  }

  /** Claims one run (waiting up to `waitMs`) and executes it; resolves with its state afterwards, or undefined. */
  async runOnce(waitMs = this.waitMs): Promise<Run | undefined> {
    const claim = await this.client.claimRun(this.queue, this.workerId, { leaseMs: this.leaseMs, waitMs });
    return claim && this.execute(claim);
  }

  /** Executes a claimed run to its end (or until it must stop); resolves with the run as the server has it. */
  async execute(claim: Claim): Promise<Run> {
    const { run } = claim;
    const scope = new RunScope(run.runId, claim.lease);
    this.lastStopReason = "";
    const beats = this.heartbeat(scope);
    try {
      return await this.attempt(claim, scope);
    } finally {
      beats.stop();
      await beats.done;
    }
  }

  private async attempt(claim: Claim, scope: RunScope): Promise<Run> {
    const { run } = claim;
    const config: RunnableConfig = {
      configurable: { thread_id: run.threadId, [RUN_SCOPE_KEY]: scope },
      signal: scope.controller.signal,
    };
    const watch = this.watchSteps(scope, config);
    try {
      try {
        await this.graph.invoke(await this.input(run), config);
      } finally {
        watch.stop();
      }
      if (scope.stopped) return this.stopped(run, scope);
      if (scope.timedOut) throw scope.timedOut;
      const state = await this.graph.getState({ configurable: { thread_id: run.threadId } });
      const checkpointId = String(state.config.configurable?.checkpoint_id ?? "");
      const interrupts = state.tasks.flatMap((t) => t.interrupts.map((i) => ({ node: t.name, id: i.id, value: i.value })));
      if (interrupts.length > 0) return await this.client.completeRun(claim.lease, interrupts, { interrupted: true, checkpointId });
      return await this.client.completeRun(claim.lease, state.values, { checkpointId });
    } catch (err) {
      if (err instanceof RunStoppedError) scope.stop(err);
      if (scope.stopped) return this.stopped(run, scope);
      if (scope.timedOut) err = scope.timedOut; // whatever the aborted step threw on its way out
      try {
        const error = err instanceof Error ? err : new Error(String(err));
        return await this.client.failRun(claim.lease, error, { retryable: this.retryable(err) });
      } catch (e) {
        if (!(e instanceof RunStoppedError)) throw e;
        scope.stop(e);
        return this.stopped(run, scope);
      }
    }
  }

  private async stopped(run: Run, scope: RunScope): Promise<Run> {
    this.lastStopReason = scope.reason instanceof CairnError ? scope.reason.reason : "STOPPED";
    return this.client.getRun(run.runId);
  }

  /** Resume when the thread's head belongs to this run (an earlier attempt got that far); else the run's input. */
  private async input(run: Run): Promise<unknown> {
    const head = await this.graph.getState({ configurable: { thread_id: run.threadId } });
    if (head.config.configurable?.checkpoint_id && head.metadata?.run_id === run.runId) return null;
    const value = run.inputType === "json" || run.inputType === "" ? decodeJson(run.input) : run.input;
    if (value !== null && typeof value === "object" && COMMAND_KEY in value) {
      const spec = ((value as Record<string, unknown>)[COMMAND_KEY] ?? {}) as { resume?: unknown; update?: unknown };
      const { Command } = await import("@langchain/langgraph");
      return new Command({ resume: spec.resume, update: spec.update as Record<string, unknown> | undefined });
    }
    return value ?? null;
  }

  /**
   * With nodeTimeoutMs, times each step of the invoke, from the start of its first node (LangGraph's callbacks
   * carry the step number) to the start of the next step's, and times the attempt out past the limit.
   */
  private watchSteps(scope: RunScope, config: RunnableConfig): { stop: () => void } {
    const limit = this.nodeTimeoutMs;
    if (limit === undefined) return { stop: () => {} };
    let step = -Infinity;
    let timer = setTimeout(() => scope.timeout(new NodeTimeout(limit)), limit);
    config.callbacks = [
      {
        handleChainStart: (_chain, _inputs, _runId, _parent, _tags, metadata) => {
          const n = metadata?.langgraph_step;
          if (typeof n !== "number" || n <= step) return;
          step = n;
          clearTimeout(timer);
          timer = setTimeout(() => scope.timeout(new NodeTimeout(limit)), limit);
        },
      },
    ];
    return { stop: () => clearTimeout(timer) };
  }

  /** Heartbeats every heartbeatMs until stopped; a refusal stops the run. */
  private heartbeat(scope: RunScope): { stop: () => void; done: Promise<void> } {
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    let wake: () => void = () => {};
    const done = (async () => {
      while (!ended && !scope.stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, this.heartbeatMs);
        });
        if (ended) return;
        try {
          scope.lease = await this.client.heartbeat(scope.lease);
        } catch (err) {
          if (err instanceof RunStoppedError) scope.stop(err);
          // Other errors: the server is briefly away; the lease outlives a few missed beats.
        }
      }
    })();
    return {
      stop: () => {
        ended = true;
        clearTimeout(timer);
        wake();
      },
      done,
    };
  }
}
