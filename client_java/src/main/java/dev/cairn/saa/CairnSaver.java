package dev.cairn.saa;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.StateGraph;
import com.alibaba.cloud.ai.graph.checkpoint.BaseCheckpointSaver;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.alibaba.cloud.ai.graph.serializer.StateSerializer;
import com.alibaba.cloud.ai.graph.serializer.plain_text.jackson.JacksonStateSerializer;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ByteString;
import com.google.protobuf.Struct;
import com.google.protobuf.UnsafeByteOperations;
import dev.cairn.client.CairnClient;
import dev.cairn.client.ConflictException;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.RunStoppedException;
import dev.cairn.client.Structs;
import dev.cairn.v1.ListRequest;
import dev.cairn.v1.SaveRequest;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.ObjectInput;
import java.io.ObjectOutput;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A Spring AI Alibaba {@link BaseCheckpointSaver} that keeps checkpoints in Cairn.
 *
 * <pre>{@code
 * CompileConfig.builder()
 *     .saverConfig(SaverConfig.builder().register(new CairnSaver(cairnClient)).build())
 *     .build();
 * }</pre>
 *
 * <p>Mapping: the {@code RunnableConfig} thread id (default {@code "$default"}) is the Cairn thread,
 * in the root namespace; checkpoint ids are kept as they are; {@code nodeId} is stored as
 * {@code node_name} and {@code nextNodeId} as the single entry of {@code next_nodes}. State is written
 * with the saver's {@link StateSerializer}: a Jackson serializer (the default, as in {@code StateGraph})
 * is stored as plain JSON with {@code state_type "json"}, readable from every language (the Java type
 * hints it puts on plain lists and maps are dropped; those on other values, e.g. Spring AI messages,
 * stay); other serializers store their own bytes tagged with their content type.
 *
 * <p>Semantics follow the other savers: {@link #put} without a checkpoint id in the config appends the
 * checkpoint as the new head (compare-and-set on the head, so concurrent writers never lose a
 * checkpoint and parents form a chain); with a checkpoint id it replaces that checkpoint
 * ({@code replace_existing}), in place when the id is unchanged. {@link #release} removes the thread
 * (Cairn {@code Clear}) and returns what it held, so a later run with the same thread id starts empty.
 * With {@link Builder#numRetained(int)} each put prunes the thread to the newest {@code n} checkpoints.
 *
 * <p>Inside a run executed by a {@link Worker} (durable runs) every put carries the run's lease and commits only
 * while it is current (else {@link RunStoppedException}, and the run stops), and the checkpoints carry the
 * run's id as the metadata key {@code run_id}.
 *
 * <p>States travel as the client sends them: give the saver a client built with
 * {@link CairnClient.Builder#compressStates(boolean) compressStates(true)} to send and load them
 * zstd-compressed.
 */
public final class CairnSaver implements BaseCheckpointSaver {

  /** The {@code state_type} of checkpoints written with a Jackson (JSON) serializer. */
  public static final String STATE_TYPE_JSON = "json";

  private static final int MAX_HEAD_RACES = 100;
  private static final Map<String, String> METADATA = Map.of("framework", "spring-ai-alibaba");
  /** METADATA as the Struct every save outside a durable run carries (immutable: built once). */
  private static final Struct METADATA_STRUCT = Structs.of(METADATA);

  private final CairnClient client;
  private final StateSerializer serializer;
  private final int numRetained;
  /** Last head id this saver wrote per thread: a hint for the compare-and-set, corrected on conflict. */
  private final Map<String, String> heads = new ConcurrentHashMap<>();

  /**
   * A saver using {@code client} and the default JSON serializer of {@link StateGraph}.
   *
   * @param client the Cairn client (not closed by the saver)
   * @throws NullPointerException when {@code client} is null
   */
  public CairnSaver(CairnClient client) {
    this(builder().client(client));
  }

  private CairnSaver(Builder b) {
    this.client = Objects.requireNonNull(b.client, "client is required");
    this.serializer = b.serializer != null ? b.serializer : StateGraph.DEFAULT_JACKSON_SERIALIZER;
    this.numRetained = b.numRetained;
  }

  /**
   * A builder; {@link Builder#client(CairnClient)} is the only required setting.
   *
   * @return a new builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /** Every checkpoint of the config's thread, newest first. */
  @Override
  public Collection<Checkpoint> list(RunnableConfig config) {
    ListRequest req = ListRequest.newBuilder()
        .setThreadId(threadId(config)).setNamespace("").setIncludeState(true).build();
    return client.listAll(req).stream().map(this::fromProto).toList();
  }

  /** The checkpoint named by the config's checkpoint id, else the thread's head; empty when absent. */
  @Override
  public Optional<Checkpoint> get(RunnableConfig config) {
    String thread = threadId(config);
    try {
      dev.cairn.v1.Checkpoint cp = config.checkPointId()
          .map(id -> client.load(thread, id))
          .orElseGet(() -> client.load(thread))
          .getCheckpoint();
      return Optional.of(fromProto(cp));
    } catch (NotFoundException e) {
      return Optional.empty();
    }
  }

  /**
   * Appends {@code checkpoint} as the thread's new head, or, when the config names a checkpoint id,
   * replaces that checkpoint. Returns the config pointing at the stored checkpoint.
   *
   * @throws NoSuchElementException when the checkpoint to replace does not exist
   */
  @Override
  public RunnableConfig put(RunnableConfig config, Checkpoint checkpoint) throws Exception {
    String thread = threadId(config);
    RunScope scope = RunScope.of(config);
    if (scope != null) {
      scope.check();
      scope.checkTimeout();
    }
    try {
      if (config.checkPointId().isPresent()) {
        replace(thread, config.checkPointId().get(), checkpoint, scope);
      } else {
        append(thread, checkpoint, scope);
      }
    } catch (RunStoppedException e) {
      if (scope != null) {
        scope.stop(e);
      }
      throw e;
    }
    if (scope != null) {
      scope.saved(checkpoint.getId());
    }
    if (numRetained > 0) {
      client.pruneKeepLatest(List.of(thread), numRetained);
    }
    return RunnableConfig.builder(config).checkPointId(checkpoint.getId()).build();
  }

  /** Removes the config's thread from Cairn and returns the checkpoints it held (newest first). */
  @Override
  public Tag release(RunnableConfig config) throws Exception {
    String thread = threadId(config);
    Collection<Checkpoint> checkpoints = list(config);
    clear(config);
    return new Tag(thread, checkpoints);
  }

  /**
   * Removes every checkpoint of the config's thread, with their writes (Cairn {@code Clear}).
   *
   * @param config names the thread ({@code threadId})
   * @return how many checkpoints were removed (0 for an empty thread)
   * @throws dev.cairn.client.UnavailableException when the server cannot be reached; every failure is a
   *     {@link dev.cairn.client.CairnException} of its code
   */
  public long clear(RunnableConfig config) {
    String thread = threadId(config);
    heads.remove(thread);
    return client.clear(thread);
  }

  // ---------------------------------------------------------------------------------------------

  private void append(String thread, Checkpoint checkpoint, RunScope scope) {
    String head = heads.get(thread); // null: unknown; "": empty thread
    for (int race = 0; ; race++) {
      String parent = head == null ? "" : head;
      SaveRequest.Builder req = SaveRequest.newBuilder()
          .setCheckpoint(toProto(thread, checkpoint, parent, scope))
          .setReplaceExisting(true);
      if (scope != null) {
        req.setRunLease(scope.lease());
      }
      if (parent.isEmpty()) {
        req.setExpectEmpty(true);
      } else {
        req.setExpectedHeadId(parent);
      }
      try {
        client.save(req.build());
        heads.put(thread, checkpoint.getId());
        return;
      } catch (ConflictException e) {
        if (e instanceof RunStoppedException || race >= MAX_HEAD_RACES) {
          throw e;
        }
        head = e.currentHeadId().isEmpty() ? headId(thread) : e.currentHeadId();
      }
    }
  }

  private void replace(String thread, String oldId, Checkpoint checkpoint, RunScope scope) {
    dev.cairn.v1.Checkpoint old;
    try {
      old = client.load(thread, oldId).getCheckpoint();
    } catch (NotFoundException e) {
      throw new NoSuchElementException(String.format("Checkpoint with id %s not found!", oldId));
    }
    SaveRequest.Builder req = SaveRequest.newBuilder()
        .setCheckpoint(toProto(thread, checkpoint, old.getParentCheckpointId(), scope))
        .setReplaceExisting(true);
    if (scope != null) {
      req.setRunLease(scope.lease());
    }
    client.save(req.build());
    if (!oldId.equals(checkpoint.getId())) {
      // Cairn cannot rename in place: the new id becomes the head and the old one goes (as PostgresSaver).
      client.delete(thread, "", oldId);
      heads.remove(thread);
    }
  }

  private String headId(String thread) {
    ListRequest req = ListRequest.newBuilder().setThreadId(thread).setNamespace("").setPageSize(1).build();
    var page = client.list(req).getCheckpointsList();
    return page.isEmpty() ? "" : page.get(0).getCheckpointId();
  }

  private static String threadId(RunnableConfig config) {
    return config.threadId().orElse(THREAD_ID_DEFAULT);
  }

  private dev.cairn.v1.Checkpoint toProto(String thread, Checkpoint cp, String parent, RunScope scope) {
    dev.cairn.v1.Checkpoint.Builder b = dev.cairn.v1.Checkpoint.newBuilder()
        .setThreadId(thread)
        .setCheckpointId(cp.getId())
        .setParentCheckpointId(parent)
        .setMetadata(scope == null ? METADATA_STRUCT
            : Structs.of(Map.of("framework", METADATA.get("framework"), "run_id", scope.runId)))
        .setNodeName(Objects.toString(cp.getNodeId(), ""));
    if (cp.getNextNodeId() != null && !cp.getNextNodeId().isEmpty()) {
      b.addNextNodes(cp.getNextNodeId());
    }
    try {
      if (serializer instanceof JacksonStateSerializer) {
        // toJson's array is new and referenced nowhere else, so the ByteString may wrap it without a copy
        b.setStateType(STATE_TYPE_JSON).setState(UnsafeByteOperations.unsafeWrap(toJson(cp.getState())));
      } else {
        b.setStateType(serializer.contentType()).setState(ByteString.copyFrom(serializer.dataToBytes(cp.getState())));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serialize the state of checkpoint " + cp.getId(), e);
    }
    return b.build();
  }

  private Checkpoint fromProto(dev.cairn.v1.Checkpoint cp) {
    Map<String, Object> state;
    try {
      if (STATE_TYPE_JSON.equals(cp.getStateType()) && serializer instanceof JacksonStateSerializer) {
        state = fromJson(cp.getState().toByteArray());
      } else if (cp.getStateType().equals(serializer.contentType())) {
        state = serializer.dataFromBytes(cp.getState().toByteArray());
      } else {
        throw new IllegalStateException(String.format(
            "checkpoint %s has state_type '%s', which the saver's %s cannot read", cp.getCheckpointId(),
            cp.getStateType(), serializer.getClass().getSimpleName()));
      }
    } catch (IOException | ClassNotFoundException e) {
      throw new IllegalStateException("cannot deserialize the state of checkpoint " + cp.getCheckpointId(), e);
    }
    return Checkpoint.builder()
        .id(cp.getCheckpointId())
        .nodeId(cp.getNodeName())
        .nextNodeId(cp.getNextNodesCount() > 0 ? cp.getNextNodes(0) : "")
        .state(state)
        .build();
  }

  // A Jackson serializer writes its JSON to the ObjectOutput as a 4-byte length and UTF-8 bytes; going
  // through writeData/readData keeps its normalization and type handling. Cairn stores the bare JSON,
  // without the Java type hints the serializer puts on plain lists and maps (its reader turns those
  // into ArrayList/LinkedHashMap either way), so that other languages read ordinary JSON. Type hints
  // of anything else (Spring AI messages, POJOs, Long, Set, ...) are kept as the serializer wrote them.

  private static final ObjectMapper TREE = JsonMapper.builder()
      .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
      .nodeFactory(JsonNodeFactory.withExactBigDecimals(true))
      .build();

  private byte[] toJson(Map<String, Object> state) throws IOException {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    try (DataObjectOutput out = new DataObjectOutput(buf)) {
      serializer.writeData(state, out);
    }
    byte[] framed = buf.toByteArray();
    int length = framed.length < 4 ? -1 : ByteBuffer.wrap(framed).getInt();
    if (length != framed.length - 4) {
      throw new IOException("unexpected output framing of " + serializer.getClass().getName());
    }
    return TREE.writeValueAsBytes(withoutContainerHints(TREE.readTree(framed, 4, length)));
  }

  /** {@code ["java.util.ArrayList", [..]]} becomes {@code [..]}; {@code "@class": "java.util.HashMap"} goes. */
  static JsonNode withoutContainerHints(JsonNode node) {
    if (node.isArray()) {
      if (node.size() == 2 && node.get(0).isTextual() && node.get(1).isArray()
          && isJavaType(node.get(0).asText(), Collection.class)) {
        node = node.get(1);
      }
      ArrayNode out = TREE.createArrayNode();
      node.forEach(e -> out.add(withoutContainerHints(e)));
      return out;
    }
    if (node.isObject()) {
      JsonNode cls = node.get("@class");
      boolean plainMap = cls == null ? !node.has("@type") && !node.has("@typeHint")
          : cls.isTextual() && isJavaType(cls.asText(), Map.class) && !node.has("@typeHint");
      if (!plainMap) {
        return node; // a typed object: the serializer's reader needs it as written
      }
      ObjectNode out = TREE.createObjectNode();
      node.fields().forEachRemaining(f -> {
        if (!"@class".equals(f.getKey())) {
          out.set(f.getKey(), withoutContainerHints(f.getValue()));
        }
      });
      return out;
    }
    return node;
  }

  private static boolean isJavaType(String className, Class<?> kind) {
    if (!className.startsWith("java.util.")) {
      return false;
    }
    try {
      return kind.isAssignableFrom(Class.forName(className, false, ClassLoader.getSystemClassLoader()));
    } catch (ClassNotFoundException | LinkageError e) {
      return false;
    }
  }

  private Map<String, Object> fromJson(byte[] json) throws IOException, ClassNotFoundException {
    ByteBuffer framed = ByteBuffer.allocate(4 + json.length).putInt(json.length).put(json);
    try (DataObjectInput in = new DataObjectInput(new ByteArrayInputStream(framed.array()))) {
      return serializer.readData(in);
    }
  }

  private static final class DataObjectOutput extends DataOutputStream implements ObjectOutput {
    DataObjectOutput(OutputStream out) {
      super(out);
    }

    @Override
    public void writeObject(Object obj) {
      throw new UnsupportedOperationException("writeObject");
    }
  }

  private static final class DataObjectInput extends DataInputStream implements ObjectInput {
    DataObjectInput(InputStream in) {
      super(in);
    }

    @Override
    public Object readObject() {
      throw new UnsupportedOperationException("readObject");
    }
  }

  /** Settings of a {@link CairnSaver}. */
  public static final class Builder {
    private CairnClient client;
    private StateSerializer serializer;
    private int numRetained;

    private Builder() {}

    /**
     * The Cairn client to use (required; the saver does not close it). Its settings apply, e.g.
     * {@code CairnClient.builder().compressStates(true)} for zstd-compressed states.
     */
    public Builder client(CairnClient client) {
      this.client = client;
      return this;
    }

    /** The state serializer; defaults to {@link StateGraph#DEFAULT_JACKSON_SERIALIZER}. Use the graph's. */
    public Builder stateSerializer(StateSerializer serializer) {
      this.serializer = serializer;
      return this;
    }

    /** Keep only the newest {@code n} checkpoints of a thread, pruning after each put (0 keeps all). */
    public Builder numRetained(int n) {
      if (n < 0) {
        throw new IllegalArgumentException("numRetained must be >= 0");
      }
      this.numRetained = n;
      return this;
    }

    /**
     * Builds the saver.
     *
     * @return the saver
     * @throws NullPointerException when no {@link #client} was set
     */
    public CairnSaver build() {
      return new CairnSaver(this);
    }
  }
}
