package dev.cairn.saa;

import com.alibaba.cloud.ai.graph.CompiledGraph;
import com.alibaba.cloud.ai.graph.GraphLifecycleListener;
import com.alibaba.cloud.ai.graph.OverAllState;
import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.Value;
import dev.cairn.client.CairnClient;
import dev.cairn.client.CairnException;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.RunStoppedException;
import dev.cairn.v1.ClaimRunResponse;
import dev.cairn.v1.CompleteRunRequest;
import dev.cairn.v1.Run;
import dev.cairn.v1.RunError;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;

/**
 * Executes durable runs of one compiled Spring AI Alibaba graph, taken from a Cairn queue, one at a time.
 *
 * <pre>{@code
 * CompiledGraph graph = stateGraph.compile(CompileConfig.builder()
 *     .saverConfig(SaverConfig.builder().register(new CairnSaver(client)).build()).build());
 * Worker worker = Worker.builder(client, "orders", graph).build();
 * worker.run();   // until stop(); elsewhere: client.startRun("order-7", "orders", "{\"order\": 7}")
 * }</pre>
 *
 * <p>The graph must checkpoint with a {@link CairnSaver} (on the same server). The worker claims a run
 * (long-polling its queue), heartbeats in a background thread, and invokes the graph on the run's thread with
 * the run in the {@link RunnableConfig} metadata, so that the saver fences every checkpoint with the run's
 * lease and tags it with the run's id. The run's input is a JSON object (the graph's input map); its output is
 * the final state as JSON.
 *
 * <p>Recovery: a run found half-done (its worker crashed, or an earlier attempt failed) resumes from the
 * thread's last checkpoint ({@link RunnableConfig.Builder#resume()}): finished steps are not run again. A
 * graph that stops at an interrupt ({@code interruptBefore}) ends the run INTERRUPTED with
 * {@code [{"node": NEXT}]} as output; a new run on the thread whose input is
 * {@code {"__command__": {"update": {...}}}} applies the update and resumes it.
 *
 * <p>Stopping: when a heartbeat or a fenced save is refused ({@link RunStoppedException}: the run was
 * cancelled, timed out, or another worker holds it now) the saver writes nothing more and the graph ends at
 * its next checkpoint (step boundary). A node error ends the attempt with failRun, retryable when
 * {@code retryable} says so (I/O errors and timeouts by default); the run's RetryPolicy decides the retry.
 */
public final class Worker {

  /** A run input holding this key resumes an interrupted thread. */
  public static final String COMMAND_KEY = "__command__";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final CairnClient client;
  private final String queue;
  private final CompiledGraph graph;
  private final String workerId;
  private final Duration lease;
  private final Duration heartbeat;
  private final Duration waitTime;
  private final Predicate<Throwable> retryable;
  private final Duration nodeTimeout;
  private volatile boolean stopping;
  private volatile String lastStopReason = "";

  private Worker(Builder b) {
    this.client = b.client;
    this.queue = b.queue;
    this.graph = b.graph;
    this.workerId = b.workerId != null ? b.workerId : defaultWorkerId();
    this.lease = b.lease;
    this.heartbeat = b.heartbeat != null ? b.heartbeat : b.lease.dividedBy(3);
    this.waitTime = b.waitTime;
    this.retryable = b.retryable;
    this.nodeTimeout = b.nodeTimeout;
  }

  /** A builder for a worker taking runs from {@code queue} for {@code graph}, reporting through {@code client}. */
  public static Builder builder(CairnClient client, String queue, CompiledGraph graph) {
    return new Builder(client, queue, graph);
  }

  /** I/O errors and timeouts are worth another attempt (as the Python worker treats OSError and TimeoutError). */
  public static boolean defaultRetryable(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause()) {
      if (t instanceof IOException || t instanceof UncheckedIOException || t instanceof TimeoutException) {
        return true;
      }
    }
    return false;
  }

  /** Take no new run after the current one: {@link #run()} returns. */
  public void stop() {
    stopping = true;
  }

  /** Why the last executed run was stopped (LEASE_LOST, RUN_CANCELLED, ...); "" when it was not. */
  public String lastStopReason() {
    return lastStopReason;
  }

  /** The id recorded on this worker's attempts. */
  public String workerId() {
    return workerId;
  }

  /** Claims and executes runs until {@link #stop()}; returns how many it executed. */
  public int run() {
    int done = 0;
    while (!stopping) {
      try {
        if (runOnce().isPresent()) {
          done++;
        }
      } catch (CairnException e) { // the server is away: try again shortly
        try {
          Thread.sleep(1000);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return done;
        }
      }
    }
    return done;
  }

  /** Claims one run (waiting up to the builder's wait time) and executes it; its state afterwards, or empty. */
  public Optional<Run> runOnce() {
    return client.claimRun(queue, workerId, lease, waitTime).map(this::execute);
  }

  /** Executes a claimed run to its end, or until it must stop; returns the run as the server has it. */
  public Run execute(ClaimRunResponse claim) {
    Run run = claim.getRun();
    RunScope scope = new RunScope(run.getRunId(), run.getThreadId(), client, claim.getLease());
    lastStopReason = "";
    AtomicBoolean ended = new AtomicBoolean();
    Thread beats = new Thread(() -> heartbeat(scope, ended), "cairn-heartbeat-" + run.getRunId());
    beats.setDaemon(true);
    beats.start();
    try {
      return attempt(run, scope);
    } finally {
      ended.set(true);
      beats.interrupt();
      try {
        beats.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private Run attempt(Run run, RunScope scope) {
    String thread = run.getThreadId();
    try {
      RunnableConfig.Builder config = RunnableConfig.builder().threadId(thread).addMetadata(RunScope.KEY, scope);
      Map<String, Object> input = input(run, config, scope);
      Optional<OverAllState> state = invoke(input, config.build(), scope);
      scope.check();
      dev.cairn.v1.Checkpoint head = client.load(thread).getCheckpoint();
      String next = head.getNextNodesCount() > 0 ? head.getNextNodes(0) : "";
      CompleteRunRequest.Builder done = CompleteRunRequest.newBuilder().setLease(scope.lease())
          .setCheckpointId(head.getCheckpointId()).setOutputType("json");
      if (!next.isEmpty() && !StateGraph.END.equals(next)) {
        done.setInterrupted(true).setOutput(json(List.of(Map.of("node", next))));
      } else {
        Map<String, Object> values = new HashMap<>(state.map(OverAllState::data).orElse(Map.of()));
        values.remove(GraphLifecycleListener.EXECUTION_ID_KEY); // the runtime's own bookkeeping, not the graph's state
        done.setOutput(json(values));
      }
      return client.completeRun(done.build());
    } catch (Exception e) {
      RunStoppedException stop = stopCause(e);
      if (stop != null) {
        scope.stop(stop);
      }
      if (scope.reason() != null) {
        return stopped(run, scope);
      }
      Throwable root = rootCause(e);
      RunError error = RunError.newBuilder().setType(root.getClass().getName())
          .setMessage(Objects.toString(root.getMessage(), root.toString())).setRetryable(retryable.test(e)).build();
      try {
        return client.failRun(scope.lease(), error);
      } catch (RunStoppedException late) {
        scope.stop(late);
        return stopped(run, scope);
      }
    }
  }

  /**
   * graph.invoke; with a node timeout, in a thread of its own, watched: a step (from one checkpoint to the next)
   * longer than the limit ends the attempt with a NodeTimeoutException, the graph's thread is interrupted and
   * left to end on its own, and the saver writes nothing more for it.
   */
  private Optional<OverAllState> invoke(Map<String, Object> input, RunnableConfig config, RunScope scope)
      throws Exception {
    if (nodeTimeout == null) {
      return graph.invoke(input, config);
    }
    FutureTask<Optional<OverAllState>> task = new FutureTask<>(() -> graph.invoke(input, config));
    Thread runner = new Thread(task, "cairn-graph-" + scope.runId);
    runner.setDaemon(true);
    runner.start();
    long limit = nodeTimeout.toNanos();
    while (true) {
      long wait = scope.lastStepNanos() + limit - System.nanoTime();
      if (wait <= 0 && !task.isDone()) {
        NodeTimeoutException timeout = new NodeTimeoutException(nodeTimeout);
        scope.timeout(timeout);
        task.cancel(true);
        throw timeout;
      }
      try {
        return task.get(Math.max(wait, 0), TimeUnit.NANOSECONDS);
      } catch (TimeoutException e) {
        // the wait ended: look again at when the current step began
      } catch (ExecutionException e) {
        throw e.getCause() instanceof Exception cause ? cause : e;
      }
    }
  }

  private Run stopped(Run run, RunScope scope) {
    lastStopReason = scope.reason().reason();
    return client.getRun(run.getRunId());
  }

  /**
   * The graph's input: nothing new, resuming, when the thread's head belongs to this run (an earlier attempt
   * got that far) or the input is a command; else the run's JSON input.
   */
  private Map<String, Object> input(Run run, RunnableConfig.Builder config, RunScope scope) throws Exception {
    dev.cairn.v1.Checkpoint head = null;
    try {
      head = client.load(run.getThreadId()).getCheckpoint();
    } catch (NotFoundException e) {
      // a new thread
    }
    if (head != null && head.getMetadata().getFieldsOrDefault("run_id", Value.getDefaultInstance())
        .getStringValue().equals(run.getRunId())) {
      scope.saved(head.getCheckpointId()); // where the resumed node's activities were recorded
      config.resume();
      return Map.of();
    }
    if (run.getInput().isEmpty()) {
      return Map.of();
    }
    if (!run.getInputType().equals("json") && !run.getInputType().isEmpty()) {
      throw new IllegalArgumentException("run " + run.getRunId() + " has input_type '" + run.getInputType()
          + "'; the worker reads JSON objects");
    }
    Map<String, Object> value = JSON.readValue(run.getInput().toByteArray(), new TypeReference<>() {});
    if (value == null) { // the JSON input null
      return Map.of();
    }
    if (value.get(COMMAND_KEY) instanceof Map<?, ?> command) {
      if (command.get("update") instanceof Map<?, ?> update && !update.isEmpty()) {
        Map<String, Object> changes = new HashMap<>();
        update.forEach((k, v) -> changes.put(String.valueOf(k), v));
        graph.updateState(RunnableConfig.builder().threadId(run.getThreadId()).addMetadata(RunScope.KEY, scope).build(),
            changes);
      }
      config.resume();
      return Map.of();
    }
    return value;
  }

  private void heartbeat(RunScope scope, AtomicBoolean ended) {
    while (!ended.get() && scope.reason() == null) {
      try {
        Thread.sleep(heartbeat.toMillis());
        scope.lease(client.heartbeat(scope.lease()));
      } catch (InterruptedException e) {
        return; // the attempt ended
      } catch (RunStoppedException e) {
        scope.stop(e);
        return;
      } catch (CairnException e) {
        // the server is briefly away: the lease outlives a few missed beats
      }
    }
  }

  private static ByteString json(Object value) {
    try {
      return ByteString.copyFrom(JSON.writeValueAsBytes(value));
    } catch (IOException e) {
      throw new UncheckedIOException("the run's output is not JSON-serializable", e);
    }
  }

  private static RunStoppedException stopCause(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof RunStoppedException r) {
        return r;
      }
    }
    return null;
  }

  private static Throwable rootCause(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }

  private static String defaultWorkerId() {
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "localhost";
    }
    return host + ":" + ManagementFactory.getRuntimeMXBean().getPid() + ":" + UUID.randomUUID().toString().substring(0, 8);
  }

  /** Settings of a {@link Worker}. */
  public static final class Builder {
    private final CairnClient client;
    private final String queue;
    private final CompiledGraph graph;
    private String workerId;
    private Duration lease = Duration.ofSeconds(30);
    private Duration heartbeat;
    private Duration waitTime = Duration.ofSeconds(10);
    private Predicate<Throwable> retryable = Worker::defaultRetryable;
    private Duration nodeTimeout;

    private Builder(CairnClient client, String queue, CompiledGraph graph) {
      this.client = Objects.requireNonNull(client, "client");
      this.queue = Objects.requireNonNull(queue, "queue");
      this.graph = Objects.requireNonNull(graph, "graph");
    }

    /** Recorded on each attempt (default host:pid:random). */
    public Builder workerId(String workerId) {
      this.workerId = workerId;
      return this;
    }

    /** How long a claim lasts without a heartbeat: a crashed worker's run is taken over after it (default 30 s). */
    public Builder lease(Duration lease) {
      this.lease = Objects.requireNonNull(lease);
      return this;
    }

    /** Interval of heartbeats (default a third of the lease). */
    public Builder heartbeat(Duration heartbeat) {
      this.heartbeat = heartbeat;
      return this;
    }

    /** Long-poll of each claim (default 10 s). */
    public Builder waitTime(Duration waitTime) {
      this.waitTime = Objects.requireNonNull(waitTime);
      return this;
    }

    /** Which node errors make failRun retryable (default {@link Worker#defaultRetryable}). */
    public Builder retryable(Predicate<Throwable> retryable) {
      this.retryable = Objects.requireNonNull(retryable);
      return this;
    }

    /**
     * Limit of each step (from one checkpoint of the run to the next; default none). A longer step ends the
     * attempt with a {@link NodeTimeoutException} (retryable by default, so the run's RetryPolicy retries it):
     * the graph's thread is interrupted and the saver stores nothing more from it.
     */
    public Builder nodeTimeout(Duration nodeTimeout) {
      this.nodeTimeout = nodeTimeout;
      return this;
    }

    public Worker build() {
      return new Worker(this);
    }
  }
}
