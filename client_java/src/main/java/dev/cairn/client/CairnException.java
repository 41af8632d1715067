package dev.cairn.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * A failed Cairn call. Unchecked; carries the gRPC {@link Status} and the {@code google.rpc.ErrorInfo}
 * detail the server attaches to every error (stable {@link #reason()} such as {@code HEAD_MOVED},
 * plus {@link #metadata()}).
 *
 * <p>Subclasses exist for the codes callers usually branch on: {@link NotFoundException},
 * {@link ConflictException} (ABORTED; {@link RunStoppedException} for a refused run lease),
 * {@link FailedPreconditionException}, {@link AlreadyExistsException}, {@link InvalidArgumentException},
 * {@link ResourceExhaustedException}, {@link UnavailableException}, {@link DataLossException} and
 * {@link UnauthenticatedException}. Other codes (e.g. DEADLINE_EXCEEDED) arrive as a plain CairnException.
 */
public class CairnException extends RuntimeException {

  private final Status status;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;

  protected CairnException(Status status, ErrorInfo info, Throwable cause) {
    super(describe(status, info), cause);
    this.status = status;
    this.reason = info == null ? "" : info.getReason();
    this.domain = info == null ? "" : info.getDomain();
    this.metadata = info == null ? Map.of() : Map.copyOf(info.getMetadataMap());
  }

  /** The gRPC status of the failed call (code and server message). */
  public Status status() {
    return status;
  }

  /** Shortcut for {@code status().getCode()}. */
  public Status.Code code() {
    return status.getCode();
  }

  /** The ErrorInfo reason (e.g. {@code CHECKPOINT_NOT_FOUND}), or "" when the server sent none. */
  public String reason() {
    return reason;
  }

  /** The ErrorInfo domain ({@code cairn.dev} for errors from the Cairn server). */
  public String domain() {
    return domain;
  }

  /** The ErrorInfo metadata (e.g. {@code field}, {@code current_head_id}); never null. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Translates a gRPC failure into the matching CairnException subclass. */
  public static CairnException from(StatusRuntimeException e) {
    return of(e.getStatus(), errorInfo(e), e);
  }

  /**
   * Builds the exception for a per-item error (BatchLoad, SaveStream) that carries code, message,
   * reason and metadata without a status trailer.
   */
  public static CairnException of(int code, String message, String reason, Map<String, String> metadata) {
    ErrorInfo info = ErrorInfo.newBuilder().setDomain("cairn.dev").setReason(reason).putAllMetadata(metadata).build();
    return of(Status.fromCodeValue(code).withDescription(message), info, null);
  }

  static CairnException of(Status status, ErrorInfo info, Throwable cause) {
    switch (status.getCode()) {
      case NOT_FOUND: return new NotFoundException(status, info, cause);
      case ABORTED:
        return info != null && RunStoppedException.REASONS.contains(info.getReason())
            ? new RunStoppedException(status, info, cause) : new ConflictException(status, info, cause);
      case FAILED_PRECONDITION: return new FailedPreconditionException(status, info, cause);
      case ALREADY_EXISTS: return new AlreadyExistsException(status, info, cause);
      case INVALID_ARGUMENT: return new InvalidArgumentException(status, info, cause);
      case RESOURCE_EXHAUSTED: return new ResourceExhaustedException(status, info, cause);
      case UNAVAILABLE: return new UnavailableException(status, info, cause);
      case DATA_LOSS: return new DataLossException(status, info, cause);
      case UNAUTHENTICATED: return new UnauthenticatedException(status, info, cause);
      default: return new CairnException(status, info, cause);
    }
  }

  private static ErrorInfo errorInfo(Throwable t) {
    com.google.rpc.Status details = StatusProto.fromThrowable(t);
    if (details == null) {
      return null;
    }
    for (Any any : details.getDetailsList()) {
      if (any.is(ErrorInfo.class)) {
        try {
          return any.unpack(ErrorInfo.class);
        } catch (InvalidProtocolBufferException ignored) {
          return null;
        }
      }
    }
    return null;
  }

  private static String describe(Status status, ErrorInfo info) {
    StringBuilder sb = new StringBuilder(status.getCode().name());
    if (info != null && !info.getReason().isEmpty()) {
      sb.append(" [").append(info.getReason()).append(']');
    }
    if (status.getDescription() != null) {
      sb.append(": ").append(status.getDescription());
    }
    if (info != null && info.getMetadataCount() > 0) {
      sb.append(' ').append(info.getMetadataMap());
    }
    return sb.toString();
  }
}
