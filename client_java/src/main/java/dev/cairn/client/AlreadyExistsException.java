package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** ALREADY_EXISTS: the checkpoint id ({@code CHECKPOINT_ID_CONFLICT}) or write ({@code WRITE_CONFLICT}) exists with different content. */
public class AlreadyExistsException extends CairnException {
  AlreadyExistsException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }
}
