/**
 * Typed errors of the Cairn client.
 *
 * Every failed call rejects with a {@link CairnError} subclass chosen by the gRPC status code. The
 * server's `google.rpc.ErrorInfo` detail (decoded from the `grpc-status-details-bin` trailer) gives the
 * stable `reason` (e.g. `HEAD_MOVED`) and its `metadata` (e.g. `current_head_id`).
 */
import { Metadata, status as Code, type ServiceError } from "@grpc/grpc-js";
import { ErrorInfo } from "./gen/google/rpc/error_details.js";
import { Status } from "./gen/google/rpc/status.js";
import type { ItemError } from "./gen/cairn/v1/checkpoint_store.js";

export { Code };

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";

/** Fields of a {@link CairnError}. */
export interface CairnErrorInit {
  code: Code;
  message: string;
  reason?: string;
  domain?: string;
  metadata?: Record<string, string>;
  cause?: unknown;
}

/** Base class of every error the client throws for a failed call. */
export class CairnError extends Error {
  /** The gRPC status code (`Code.NOT_FOUND`, ...). */
  readonly code: Code;
  /** The ErrorInfo reason (`CHECKPOINT_NOT_FOUND`, `HEAD_MOVED`, ...); "" when the server sent none. */
  readonly reason: string;
  /** The ErrorInfo domain ("cairn.dev" for errors of the Cairn server). */
  readonly domain: string;
  /** The ErrorInfo metadata (`current_head_id`, `field`, `limit`, ...). */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(init: CairnErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.reason = init.reason ?? "";
    this.domain = init.domain ?? "";
    this.metadata = init.metadata ?? {};
  }

  /** The status code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return Code[this.code] ?? String(this.code);
  }
}

/** INVALID_ARGUMENT (reason INVALID_FIELD): `metadata.field` names the field to fix. */
export class InvalidArgumentError extends CairnError {
  /** The request field the server rejected. */
  get field(): string | undefined {
    return this.metadata.field;
  }
}
/** NOT_FOUND: reason CHECKPOINT_NOT_FOUND or THREAD_EMPTY. */
export class NotFoundError extends CairnError {}
/** ALREADY_EXISTS: reason CHECKPOINT_ID_CONFLICT or WRITE_CONFLICT (same id, different content). */
export class AlreadyExistsError extends CairnError {}
/** ABORTED (reason HEAD_MOVED): a compare-and-set lost; reload and retry. */
export class ConflictError extends CairnError {
  /** Id of the current head of the (thread, namespace), from the ErrorInfo metadata. */
  get currentHeadId(): string | undefined {
    return this.metadata.current_head_id;
  }
}
/**
 * ABORTED for a call under a run lease (heartbeat, fenced save or writes, completeRun, failRun) that may not go
 * on; `reason` says why: LEASE_LOST (another worker holds the run now), RUN_CANCELLED or RUN_TIMED_OUT. Nothing
 * was stored: stop working on the run.
 */
export class RunStoppedError extends ConflictError {
  /** The run, from the ErrorInfo metadata. */
  get runId(): string | undefined {
    return this.metadata.run_id;
  }
}
/** FAILED_PRECONDITION: the run or its thread does not allow the call (reason THREAD_BUSY or RUN_FINISHED). */
export class FailedPreconditionError extends CairnError {}
/** RESOURCE_EXHAUSTED (reason LIMIT_EXCEEDED): `metadata.limit` / `metadata.limit_value`. */
export class ResourceExhaustedError extends CairnError {}
/** UNAVAILABLE: the server or its cold store is unreachable; retry with backoff. */
export class UnavailableError extends CairnError {}
/**
 * DATA_LOSS: reason CHECKSUM_MISMATCH, the stored bytes are corrupt; or reason STATE_ENCODING (raised by the
 * client with `compressStates`), a state the server sent zstd-encoded that does not decode as it says.
 */
export class DataLossError extends CairnError {}
/** UNAUTHENTICATED: reason MISSING_TOKEN or INVALID_TOKEN. */
export class UnauthenticatedError extends CairnError {}
/** PERMISSION_DENIED. */
export class PermissionDeniedError extends CairnError {}
/** DEADLINE_EXCEEDED: the call's deadline passed. */
export class DeadlineExceededError extends CairnError {}
/** CANCELLED: the call was cancelled, e.g. by its AbortSignal (`cause` is the signal's reason). */
export class CancelledError extends CairnError {}
/** INTERNAL or UNKNOWN: a server or transport bug (never caused by what the client sent). */
export class InternalError extends CairnError {}

const CLASSES: Partial<Record<Code, new (init: CairnErrorInit) => CairnError>> = {
  [Code.INVALID_ARGUMENT]: InvalidArgumentError,
  [Code.NOT_FOUND]: NotFoundError,
  [Code.ALREADY_EXISTS]: AlreadyExistsError,
  [Code.ABORTED]: ConflictError,
  [Code.FAILED_PRECONDITION]: FailedPreconditionError,
  [Code.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [Code.UNAVAILABLE]: UnavailableError,
  [Code.DATA_LOSS]: DataLossError,
  [Code.UNAUTHENTICATED]: UnauthenticatedError,
  [Code.PERMISSION_DENIED]: PermissionDeniedError,
  [Code.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [Code.CANCELLED]: CancelledError,
  [Code.INTERNAL]: InternalError,
  [Code.UNKNOWN]: InternalError,
};

const RUN_STOPPED = ["LEASE_LOST", "RUN_CANCELLED", "RUN_TIMED_OUT"];

/** Builds the {@link CairnError} subclass for a status code (the base class for codes without one). */
export function makeError(init: CairnErrorInit): CairnError {
  if (init.code === Code.ABORTED && RUN_STOPPED.includes(init.reason ?? "")) return new RunStoppedError(init);
  const Cls = CLASSES[init.code] ?? CairnError;
  return new Cls(init);
}

/** Decodes the ErrorInfo of a `grpc-status-details-bin` trailer (a serialized google.rpc.Status). */
export function decodeErrorInfo(metadata: Metadata | undefined): ErrorInfo | undefined {
  const raw = metadata?.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Uint8Array)) return undefined;
  try {
    const detail = Status.decode(raw).details.find((d) => d.typeUrl === ERROR_INFO_TYPE);
    return detail ? ErrorInfo.decode(detail.value) : undefined;
  } catch {
    return undefined; // a malformed trailer must not hide the status itself
  }
}

/** Converts a grpc-js error into a {@link CairnError} (other errors are returned unchanged). */
export function toCairnError(err: unknown): unknown {
  if (err instanceof CairnError || !isServiceError(err)) return err;
  const info = decodeErrorInfo(err.metadata);
  return makeError({
    code: err.code,
    message: err.details || err.message,
    reason: info?.reason,
    domain: info?.domain,
    metadata: info?.metadata,
    cause: err,
  });
}

/** The {@link CancelledError} of a call whose AbortSignal fired; its `cause` is the signal's reason. */
export function cancelledError(signal: AbortSignal): CancelledError {
  return new CancelledError({ code: Code.CANCELLED, message: "the call was aborted", cause: signal.reason });
}

/** Converts the per-item error of SaveStream / SaveBatch / BatchLoad into a {@link CairnError}. */
export function fromItemError(item: ItemError): CairnError {
  return makeError({ code: item.code, message: item.message, reason: item.reason, domain: "cairn.dev", metadata: item.metadata });
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}
