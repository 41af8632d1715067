package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** NOT_FOUND: no such checkpoint ({@code CHECKPOINT_NOT_FOUND}) or an empty thread ({@code THREAD_EMPTY}). */
public class NotFoundException extends CairnException {
  NotFoundException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
