package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;

/** FAILED_PRECONDITION: the run or its thread does not allow the call ({@code THREAD_BUSY}, {@code RUN_FINISHED}). */
public class FailedPreconditionException extends CairnException {
  FailedPreconditionException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }

  /** The run named by the error: the busy thread's run, or the finished one ("" when not said). */
  public String runId() {
    return metadata().getOrDefault("run_id", "");
  }
}
