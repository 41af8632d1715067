/**
 * Durable runs on the client: the types (Run, RunLease, Claim, ...) and the pure request/response helpers that
 * {@link CairnClient}'s run methods use.
 *
 * A run executes a graph on a thread. `startRun` queues it; a worker `claimRun`s it and holds it under a
 * {@link RunLease}, `heartbeat`s while working, passes the lease to `save` / `putWrites` (`runLease`: fenced
 * writes) and ends it with `completeRun` or `failRun`. A call under a lease that may not go on rejects with a
 * {@link RunStoppedError} (reason LEASE_LOST, RUN_CANCELLED or RUN_TIMED_OUT): stop working on the run.
 */
import {
  CompleteRunRequest,
  FailRunRequest,
  ListRunsRequest,
  type ListRunsResponse,
  type Run as ProtoRun,
  type RunAttempt as ProtoRunAttempt,
  type RunLease,
  RunStatus,
  StartRunRequest,
} from "./gen/cairn/v1/checkpoint_store.js";

export type { RunLease };

/** A run's status, by name. */
export type RunStatusName = "PENDING" | "RUNNING" | "INTERRUPTED" | "COMPLETED" | "FAILED" | "CANCELLED";

export const RUN_STATUSES: readonly RunStatusName[] = ["PENDING", "RUNNING", "INTERRUPTED", "COMPLETED", "FAILED", "CANCELLED"];
const FINAL: readonly RunStatusName[] = ["COMPLETED", "FAILED", "CANCELLED"];
const PREFIX = "RUN_STATUS_";

/** One claim of a run by a worker (see RunAttempt in the proto). */
export type RunAttempt = Omit<ProtoRunAttempt, "status"> & { status: RunStatusName };

/** A run as the server keeps it (see Run in the proto), with its status by name. */
export type Run = Omit<ProtoRun, "status" | "attempts"> & { status: RunStatusName; attempts: RunAttempt[] };

/** A claimed run and the lease to work on it under; `recovered`: it was abandoned by another worker. */
export interface Claim {
  run: Run;
  lease: RunLease;
  recovered: boolean;
}

/** One page of ListRuns, newest first. */
export interface RunPage {
  runs: Run[];
  nextPageToken: string;
}

/**
 * How the server retries a run whose attempt failed with a retryable error (`failRun`). Unset fields take the
 * server's defaults: one attempt; 1000 ms before the first retry, doubling, capped at 100x; no recovery limit.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  backoffCoefficient?: number;
  maxBackoffMs?: number;
  /** How often the run may be taken over after its worker stopped heartbeating (0 = no limit). */
  maxRecoveries?: number;
}

/** Options of {@link CairnClient.startRun}. */
export interface StartRunOptions {
  /** Queue to wait on (default "default"); only workers claiming it take the run. */
  queue?: string;
  /** Run id; set it so a retried start is idempotent (default: the server makes a UUIDv7). */
  runId?: string;
  /** Tag of `input` when it is bytes (default "json"). */
  inputType?: string;
  metadata?: Record<string, unknown>;
  /** Retry policy; unset = one attempt, no retry. */
  retry?: RetryPolicy;
  /** Longest time from the first claim to the end, across attempts; 0 = none. */
  executionTimeoutMs?: number;
  /** Not claimed before this time. */
  notBefore?: Date;
}

/** Filters and paging of {@link CairnClient.listRuns}. */
export interface RunQuery {
  /** One status or several (any of them); unset = all. */
  status?: RunStatusName | RunStatusName[];
  queue?: string;
  threadId?: string;
  /** Created at or after. */
  createdAfter?: Date;
  createdBefore?: Date;
  /** Default 100, capped at 1000. */
  pageSize?: number;
  pageToken?: string;
}

/** What a worker reports to {@link CairnClient.failRun}: an Error (its name and message are sent) or its parts. */
export type RunFailure = Error | string | { type?: string; message: string; retryable?: boolean };

/** True for COMPLETED, FAILED and CANCELLED: the run will not change again. */
export function isFinal(status: RunStatusName): boolean {
  return FINAL.includes(status);
}

/** Decodes a JSON payload (a run's input or output); undefined when empty. */
export function decodeJson(bytes: Uint8Array): unknown {
  return bytes.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(bytes));
}

function statusName(status: RunStatus): RunStatusName {
  return RunStatus[status].slice(PREFIX.length) as RunStatusName;
}

function statusValue(name: RunStatusName): RunStatus {
  const upper = name.toUpperCase();
  if (!RUN_STATUSES.includes(upper as RunStatusName)) {
    throw new TypeError(`unknown run status ${JSON.stringify(name)}; use one of ${RUN_STATUSES.join(", ")}`);
  }
  return RunStatus[`${PREFIX}${upper}` as keyof typeof RunStatus];
}

/** A payload as bytes and its type tag: bytes as they are, anything else as JSON. */
function payload(value: unknown, type: string | undefined): { bytes: Uint8Array; type: string } {
  if (value === undefined) return { bytes: new Uint8Array(), type: type ?? "" };
  if (value instanceof Uint8Array) return { bytes: value, type: type ?? "json" };
  if (type !== undefined && type !== "json") throw new TypeError(`the value must be a Uint8Array when its type is "${type}"`);
  return { bytes: new TextEncoder().encode(JSON.stringify(value)), type: "json" };
}

export function runFromProto(r: ProtoRun): Run {
  return { ...r, status: statusName(r.status), attempts: r.attempts.map((a) => ({ ...a, status: statusName(a.status) })) };
}

export function runsPage(res: ListRunsResponse): RunPage {
  return { runs: res.runs.map(runFromProto), nextPageToken: res.nextPageToken };
}

/** The lease as it goes back to the server (its expiry is the server's to set). */
export function leaseOut(lease: RunLease): RunLease {
  return { runId: lease.runId, epoch: lease.epoch, token: lease.token };
}

export function startRunRequest(threadId: string, input: unknown, o: StartRunOptions): StartRunRequest {
  const { bytes, type } = payload(input, o.inputType);
  return StartRunRequest.fromPartial({
    threadId,
    queue: o.queue ?? "default",
    runId: o.runId ?? "",
    input: bytes,
    inputType: type,
    metadata: o.metadata,
    retryPolicy: o.retry
      ? {
          maxAttempts: o.retry.maxAttempts ?? 0,
          initialBackoffMs: o.retry.initialBackoffMs ?? 0,
          backoffCoefficient: o.retry.backoffCoefficient ?? 0,
          maxBackoffMs: o.retry.maxBackoffMs ?? 0,
          maxRecoveries: o.retry.maxRecoveries ?? 0,
        }
      : undefined,
    executionTimeoutMs: o.executionTimeoutMs ?? 0,
    notBefore: o.notBefore,
  });
}

export function completeRunRequest(
  lease: RunLease,
  output: unknown,
  o: { interrupted?: boolean; checkpointId?: string; outputType?: string },
): CompleteRunRequest {
  const { bytes, type } = payload(output, o.outputType);
  return CompleteRunRequest.fromPartial({
    lease: leaseOut(lease),
    output: bytes,
    outputType: type,
    interrupted: o.interrupted ?? false,
    checkpointId: o.checkpointId ?? "",
  });
}

export function failRunRequest(lease: RunLease, failure: RunFailure, retryable: boolean | undefined): FailRunRequest {
  let error: { type: string; message: string; retryable: boolean };
  if (failure instanceof Error) error = { type: failure.name, message: failure.message, retryable: retryable ?? false };
  else if (typeof failure === "string") error = { type: "", message: failure, retryable: retryable ?? false };
  else error = { type: failure.type ?? "", message: failure.message, retryable: retryable ?? failure.retryable ?? false };
  return FailRunRequest.fromPartial({ lease: leaseOut(lease), error });
}

export function listRunsRequest(q: RunQuery): ListRunsRequest {
  const names = q.status === undefined ? [] : Array.isArray(q.status) ? q.status : [q.status];
  return ListRunsRequest.fromPartial({
    statuses: names.map(statusValue),
    queue: q.queue ?? "",
    threadId: q.threadId ?? "",
    createdAfter: q.createdAfter,
    createdBefore: q.createdBefore,
    pageSize: q.pageSize ?? 0,
    pageToken: q.pageToken ?? "",
  });
}
