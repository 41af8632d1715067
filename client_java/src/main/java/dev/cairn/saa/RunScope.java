package dev.cairn.saa;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import dev.cairn.client.RunStoppedException;
import dev.cairn.v1.RunLease;

/**
 * The durable run a {@link Worker} executes, as CairnSaver sees it: the worker puts it in the metadata of the
 * graph's {@link RunnableConfig} (key {@link #KEY}), and the saver fences every put with its lease, tags the
 * checkpoints with the run id, and refuses to write once the run must stop.
 */
final class RunScope {
  static final String KEY = "cairn_run";

  final String runId;
  private volatile RunLease lease;
  private volatile RunStoppedException reason;

  RunScope(String runId, RunLease lease) {
    this.runId = runId;
    this.lease = lease;
  }

  static RunScope of(RunnableConfig config) {
    return config.metadata(KEY).filter(RunScope.class::isInstance).map(RunScope.class::cast).orElse(null);
  }

  RunLease lease() {
    return lease;
  }

  void lease(RunLease lease) {
    this.lease = lease;
  }

  /** Why the run must stop; null while it may go on. */
  RunStoppedException reason() {
    return reason;
  }

  /** Records the first reason the run must stop. */
  synchronized void stop(RunStoppedException e) {
    if (reason == null) {
      reason = e;
    }
  }

  /** Throws the reason to stop, if any: a stopped run writes nothing more. */
  void check() {
    RunStoppedException r = reason;
    if (r != null) {
      throw r;
    }
  }
}
