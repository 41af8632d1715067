package dev.cairn.saa;

import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * A step of a durable run ran longer than the worker's {@link Worker.Builder#nodeTimeout(Duration)}. A
 * {@link TimeoutException}, so {@link Worker#defaultRetryable} retries it (as Python's NodeTimeout is a
 * TimeoutError).
 */
public final class NodeTimeoutException extends TimeoutException {
  private static final long serialVersionUID = 1L;

  /** The limit that was passed. */
  public final transient Duration timeout;

  NodeTimeoutException(Duration timeout) {
    super("a step's node(s) ran longer than " + timeout.toMillis() + " ms");
    this.timeout = timeout;
  }
}
