package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** INVALID_ARGUMENT ({@code INVALID_FIELD}): {@link #field()} names the request field to fix. */
public class InvalidArgumentException extends CairnException {
  InvalidArgumentException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }

  /** The request field the server rejected, or "" when it did not name one. */
  public String field() {
    return metadata().getOrDefault("field", "");
  }
}
