package dev.cairn.saa;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.fasterxml.jackson.databind.JsonNode;
import dev.cairn.client.CairnClient;
import dev.cairn.client.RunStoppedException;
import dev.cairn.v1.RunLease;
import java.util.HashMap;
import java.util.Map;

/**
 * The durable run a {@link Worker} executes, as CairnSaver sees it: the worker puts it in the metadata of the
 * graph's {@link RunnableConfig} (key {@link #KEY}), and the saver fences every put with its lease, tags the
 * checkpoints with the run id, and refuses to write once the run must stop.
 */
final class RunScope {
  static final String KEY = "cairn_run";

  final String runId;
  final String threadId;
  final CairnClient client;
  private volatile RunLease lease;
  private volatile RunStoppedException reason;
  private volatile NodeTimeoutException timedOut;
  private volatile String head; // the last checkpoint of the run: where a node's activities are recorded
  private volatile long lastStepNanos = System.nanoTime(); // when the last checkpoint was put (a step ended)
  /** Activity records read or written in this attempt: checkpoint id -> activity key -> result. */
  final Map<String, Map<String, JsonNode>> activities = new HashMap<>();

  RunScope(String runId, String threadId, CairnClient client, RunLease lease) {
    this.runId = runId;
    this.threadId = threadId;
    this.client = client;
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

  /** Throws the node timeout that ended the attempt, if any: a timed-out attempt writes nothing more. */
  void checkTimeout() throws NodeTimeoutException {
    NodeTimeoutException t = timedOut;
    if (t != null) {
      throw t;
    }
  }

  /** Ends the attempt: its step ran too long (not a stop: the attempt fails and may be retried). */
  void timeout(NodeTimeoutException e) {
    timedOut = e;
  }

  /** The checkpoint {@code id} of the run was stored: a step ended. */
  void saved(String id) {
    head = id;
    lastStepNanos = System.nanoTime();
  }

  String head() {
    return head;
  }

  long lastStepNanos() {
    return lastStepNanos;
  }
}
