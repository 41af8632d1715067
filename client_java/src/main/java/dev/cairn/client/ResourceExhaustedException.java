package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** RESOURCE_EXHAUSTED ({@code LIMIT_EXCEEDED}): metadata {@code limit} names the limit, {@code limit_value} its value. */
public class ResourceExhaustedException extends CairnException {
  ResourceExhaustedException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
