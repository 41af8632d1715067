package dev.cairn.saa;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.cairn.client.RunStoppedException;
import dev.cairn.v1.PendingWrite;
import dev.cairn.v1.PutWritesRequest;
import dev.cairn.v1.Write;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Activity records of durable runs executed by a {@link Worker}: a node (an {@code AsyncNodeActionWithConfig},
 * which gets the run's {@link RunnableConfig}) runs a side effect once.
 *
 * <pre>{@code
 * .addNode("charge", node_async((state, config) -> {
 *   Receipt r = Activities.activity(config, "charge", "pay", Receipt.class, () -> payments.charge(order));
 *   return Map.of("receipt", r.id());
 * }))
 * }</pre>
 *
 * <p>The result is recorded as JSON in a pending write of the checkpoint the node started from (the run's last
 * checkpoint), task id {@code activity:NODE:NAME} and channel {@code activity} (the layout of the Python, Go and
 * TypeScript workers), stored under the run's lease. The node re-executed after a crash or a retry (Spring AI
 * Alibaba resumes at the node that checkpoint names) finds it there and gets it back instead of calling the side
 * effect again.
 */
public final class Activities {
  /** Channel of an activity record. */
  public static final String CHANNEL = "activity";

  private static final ObjectMapper JSON = new ObjectMapper();

  private Activities() {}

  /**
   * Runs {@code fn} once for node {@code node} of the config's run and returns its result, read back as
   * {@code type} from its JSON record. {@code name} must be unique within the node. A crash between {@code fn}
   * returning and the record being stored runs {@code fn} again (at least once; exactly once when recorded). (Spring
   * AI Alibaba saves a checkpoint before the first node, so every node has one to record on.) Throws
   * {@link RunStoppedException} when the run must stop.
   *
   * @throws IllegalStateException outside a node of a Worker's run
   */
  public static <T> T activity(RunnableConfig config, String node, String name, Class<T> type, Callable<T> fn)
      throws Exception {
    RunScope scope = RunScope.of(config);
    if (scope == null) {
      throw new IllegalStateException("activity() can only be called inside a node of a durable run (Worker)");
    }
    scope.check();
    String key = CHANNEL + ":" + node + ":" + name;
    String checkpointId = scope.head();
    Map<String, JsonNode> recorded = checkpointId == null ? new HashMap<>() : records(scope, checkpointId);
    synchronized (recorded) {
      JsonNode value = recorded.get(key);
      if (value != null) {
        return JSON.treeToValue(value, type);
      }
    }
    T result = fn.call();
    JsonNode value = JSON.valueToTree(result);
    scope.check();
    if (checkpointId != null) {
      PutWritesRequest req = PutWritesRequest.newBuilder().setThreadId(scope.threadId).setCheckpointId(checkpointId)
          .setTaskId(key).setRunLease(scope.lease())
          .addWrites(Write.newBuilder().setIdx(0).setChannel(CHANNEL).setValueType("json")
              .setValue(ByteString.copyFrom(JSON.writeValueAsBytes(value))))
          .build();
      try {
        scope.client.putWrites(req);
      } catch (RunStoppedException e) {
        scope.stop(e);
        throw e;
      }
      synchronized (recorded) {
        recorded.put(key, value);
      }
    }
    return JSON.treeToValue(value, type);
  }

  /** The activity records of a checkpoint, read once per attempt. */
  private static Map<String, JsonNode> records(RunScope scope, String checkpointId) throws IOException {
    synchronized (scope.activities) {
      Map<String, JsonNode> recorded = scope.activities.get(checkpointId);
      if (recorded == null) {
        recorded = new HashMap<>();
        for (PendingWrite w : scope.client.load(scope.threadId, checkpointId).getPendingWritesList()) {
          if (w.getChannel().equals(CHANNEL)) {
            recorded.put(w.getTaskId(), JSON.readTree(w.getValue().toByteArray()));
          }
        }
        scope.activities.put(checkpointId, recorded);
      }
      return recorded;
    }
  }
}
