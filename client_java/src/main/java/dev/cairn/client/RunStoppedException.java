package dev.cairn.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import java.util.Set;

/**
 * ABORTED for a call under a run lease (heartbeat, fenced save or writes, completeRun, failRun) that may not go
 * on: {@link #reason()} is {@code LEASE_LOST} (another worker holds the run now), {@code RUN_CANCELLED} or
 * {@code RUN_TIMED_OUT}. Nothing was stored; stop working on the run.
 */
public class RunStoppedException extends ConflictException {
  static final Set<String> REASONS = Set.of("LEASE_LOST", "RUN_CANCELLED", "RUN_TIMED_OUT");

  RunStoppedException(Status status, ErrorInfo info, Throwable cause) {
    super(status, info, cause);
  }

  /** The run the lease was for ("" when the server did not say). */
  public String runId() {
    return metadata().getOrDefault("run_id", "");
  }
}
