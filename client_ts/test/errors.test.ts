/**
 * The status -> error class mapping, for every code, from a grpc-js error carrying a real
 * `grpc-status-details-bin` trailer (a google.rpc.Status with an ErrorInfo detail), as the server sends it.
 * Codes the server returns on demand are also checked live in client.test.ts.
 */
import { Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  AlreadyExistsError,
  CairnError,
  CancelledError,
  Code,
  ConflictError,
  DataLossError,
  DeadlineExceededError,
  decodeErrorInfo,
  fromItemError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  toCairnError,
  UnauthenticatedError,
  UnavailableError,
} from "../src/index.js";
import { ErrorInfo } from "../src/gen/google/rpc/error_details.js";
import { Status } from "../src/gen/google/rpc/status.js";

function serviceError(code: Code, reason: string, metadata: Record<string, string> = {}): ServiceError {
  const info = ErrorInfo.encode({ reason, domain: "cairn.dev", metadata }).finish();
  const status = Status.encode({
    code,
    message: "details",
    details: [
      { typeUrl: "type.googleapis.com/google.rpc.DebugInfo", value: new Uint8Array() },
      { typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: info },
    ],
  }).finish();
  const trailers = new Metadata();
  trailers.set("grpc-status-details-bin", Buffer.from(status));
  return Object.assign(new Error(`${code} ${Code[code]}: details`), { code, details: "details", metadata: trailers });
}

const cases: Array<[Code, new (...a: never[]) => CairnError, string]> = [
  [Code.INVALID_ARGUMENT, InvalidArgumentError, "INVALID_FIELD"],
  [Code.NOT_FOUND, NotFoundError, "THREAD_EMPTY"],
  [Code.ALREADY_EXISTS, AlreadyExistsError, "WRITE_CONFLICT"],
  [Code.ABORTED, ConflictError, "HEAD_MOVED"],
  [Code.RESOURCE_EXHAUSTED, ResourceExhaustedError, "LIMIT_EXCEEDED"],
  [Code.UNAVAILABLE, UnavailableError, "COLD_STORE_UNAVAILABLE"],
  [Code.DATA_LOSS, DataLossError, "CHECKSUM_MISMATCH"],
  [Code.UNAUTHENTICATED, UnauthenticatedError, "INVALID_TOKEN"],
  [Code.PERMISSION_DENIED, PermissionDeniedError, "DENIED"],
  [Code.DEADLINE_EXCEEDED, DeadlineExceededError, ""],
  [Code.CANCELLED, CancelledError, ""],
  [Code.INTERNAL, InternalError, "INTERNAL"],
  [Code.UNKNOWN, InternalError, ""],
];

describe("toCairnError", () => {
  it.each(cases)("maps code %i to its class with reason, domain and metadata", (code, cls, reason) => {
    const source = serviceError(code, reason, { current_head_id: "h1", field: "thread_id" });
    const err = toCairnError(source) as CairnError;
    expect(err).toBeInstanceOf(cls);
    expect(err).toBeInstanceOf(CairnError);
    expect(err.name).toBe(cls.name);
    expect(err.code).toBe(code);
    expect(err.codeName).toBe(Code[code]);
    expect(err.reason).toBe(reason);
    expect(err.domain).toBe("cairn.dev");
    expect(err.metadata).toEqual({ current_head_id: "h1", field: "thread_id" });
    expect(err.message).toBe("details");
    expect(err.cause).toBe(source);
  });

  it("exposes current_head_id and field", () => {
    expect((toCairnError(serviceError(Code.ABORTED, "HEAD_MOVED", { current_head_id: "h9" })) as ConflictError).currentHeadId).toBe("h9");
    expect((toCairnError(serviceError(Code.INVALID_ARGUMENT, "INVALID_FIELD", { field: "page_size" })) as InvalidArgumentError).field).toBe("page_size");
  });

  it("keeps the status when the trailer is missing or malformed, and leaves other errors alone", () => {
    const bare = Object.assign(new Error("x"), { code: Code.NOT_FOUND, details: "gone", metadata: new Metadata() });
    const err = toCairnError(bare) as NotFoundError;
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.reason).toBe("");
    expect(err.metadata).toEqual({});

    const junk = new Metadata();
    junk.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
    expect(decodeErrorInfo(junk)).toBeUndefined();

    const plain = new TypeError("not grpc");
    expect(toCairnError(plain)).toBe(plain);
  });

  it("maps the item errors of SaveStream and BatchLoad", () => {
    const err = fromItemError({ code: Code.ABORTED, message: "lost", reason: "HEAD_MOVED", metadata: { current_head_id: "h" } });
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).currentHeadId).toBe("h");
  });
});
