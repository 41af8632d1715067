package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** ABORTED ({@code HEAD_MOVED}): a compare-and-set lost; reload from {@link #currentHeadId()} and retry. */
public class ConflictException extends CairnException {
  ConflictException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }

  /** Id of the head the server holds now ("" when the thread is empty or the server did not say). */
  public String currentHeadId() {
    return metadata().getOrDefault("current_head_id", "");
  }
}
