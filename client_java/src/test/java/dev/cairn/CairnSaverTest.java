package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.cloud.ai.graph.OverAllState;
import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.checkpoint.BaseCheckpointSaver;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.alibaba.cloud.ai.graph.serializer.std.ObjectStreamStateSerializer;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.client.CairnClient;
import dev.cairn.saa.CairnSaver;
import dev.cairn.v1.ListRequest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;

/**
 * CairnSaver through the BaseCheckpointSaver interface: the behaviours Spring AI Alibaba's own saver
 * tests check (put/get/list, replace, get with no data, release, thread isolation, concurrency).
 */
class CairnSaverTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static CairnClient cairn;
  static CairnSaver saver;

  @BeforeAll
  static void connect() {
    cairn = TestServer.client();
    saver = new CairnSaver(cairn);
  }

  @AfterAll
  static void close() {
    cairn.close();
  }

  static RunnableConfig config(String thread) {
    return RunnableConfig.builder().threadId(thread).build();
  }

  static Checkpoint cp(String id, Map<String, Object> state, String node, String next) {
    return Checkpoint.builder().id(id).state(state).nodeId(node).nextNodeId(next).build();
  }

  static List<String> ids(BaseCheckpointSaver s, RunnableConfig config) {
    return s.list(config).stream().map(Checkpoint::getId).toList();
  }

  @Test
  void putGetAndList() throws Exception {
    RunnableConfig config = config(TestServer.threadId("saver-put"));
    RunnableConfig after1 = saver.put(config, cp("cp1", Map.of("data", "data1"), "node1", "node2"));
    assertEquals(Optional.of("cp1"), after1.checkPointId());
    saver.put(config, cp("cp2", Map.of("data", "data2"), "node1", "node2"));

    assertEquals(List.of("cp2", "cp1"), ids(saver, config), "newest first");
    Checkpoint latest = saver.get(config).orElseThrow();
    assertEquals("cp2", latest.getId());
    assertEquals("data2", latest.getState().get("data"));
    assertEquals("node1", latest.getNodeId());
    assertEquals("node2", latest.getNextNodeId());

    Checkpoint byId = saver.get(RunnableConfig.builder(config).checkPointId("cp1").build()).orElseThrow();
    assertEquals("data1", byId.getState().get("data"));
  }

  @Test
  void storesPlainJsonWithNodeNamesAndParentChain() throws Exception {
    String thread = TestServer.threadId("saver-json");
    saver.put(config(thread), cp("a", Map.of("n", 1), "__START__", "agent"));
    saver.put(config(thread), cp("b", Map.of("n", 2, "tags", List.of("x", "y")), "agent", "tools"));

    dev.cairn.v1.Checkpoint head = cairn.load(thread).getCheckpoint();
    assertEquals("json", head.getStateType());
    assertEquals(Map.of("n", 2, "tags", List.of("x", "y")),
        JSON.readValue(head.getState().toByteArray(), Map.class));
    assertEquals("agent", head.getNodeName());
    assertEquals(List.of("tools"), head.getNextNodesList());
    assertEquals("a", head.getParentCheckpointId());
    assertEquals("", cairn.load(thread, "a").getCheckpoint().getParentCheckpointId());
  }

  @Test
  void nestedValuesRoundTripAsPlainJson() throws Exception {
    String thread = TestServer.threadId("saver-nested");
    Map<String, Object> state = Map.of("list", List.of(1, List.of("a", Map.of("k", 2.5))),
        "map", Map.of("inner", Map.of("deep", List.of())), "long", 12345678901L, "text", "é");
    saver.put(config(thread), cp("n1", state, "a", "b"));

    assertEquals(JSON.valueToTree(Map.of("list", List.of(1, List.of("a", Map.of("k", 2.5))),
            "map", Map.of("inner", Map.of("deep", List.of())), "text", "é")),
        ((com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(
            cairn.load(thread).getCheckpoint().getState().toByteArray())).without("long"));
    Map<String, Object> back = saver.get(config(thread)).orElseThrow().getState();
    assertEquals(state, back);
    assertInstanceOf(Long.class, back.get("long"));
  }

  @Test
  void replaceKeepsPositionAndUpdatesState() throws Exception {
    RunnableConfig config = config(TestServer.threadId("saver-replace"));
    saver.put(config, cp("cp1", Map.of("version", 1), "node1", "node2"));
    saver.put(config, cp("cp2", Map.of("version", 1), "node2", "node3"));
    saver.put(config, cp("cp3", Map.of("version", 1), "node3", "node4"));

    RunnableConfig at2 = RunnableConfig.builder(config).checkPointId("cp2").build();
    RunnableConfig result = saver.put(at2, cp("cp2", Map.of("version", 2), "node2", "node3"));
    assertEquals(Optional.of("cp2"), result.checkPointId());
    assertEquals(2, saver.get(at2).orElseThrow().getState().get("version"));
    assertEquals(List.of("cp3", "cp2", "cp1"), ids(saver, config), "replaced in place");
    assertEquals("cp3", saver.get(config).orElseThrow().getId());

    // A replacement with a new id (what CompiledGraph.updateState does) takes the old one's place as head.
    saver.put(RunnableConfig.builder(config).checkPointId("cp3").build(),
        cp("cp3b", Map.of("version", 3), "node3", "node4"));
    assertEquals(List.of("cp3b", "cp2", "cp1"), ids(saver, config));

    assertThrows(NoSuchElementException.class, () -> saver.put(
        RunnableConfig.builder(config).checkPointId("missing").build(), cp("x", Map.of(), "n", "m")));
  }

  @Test
  void getWithNoData() {
    RunnableConfig config = config(TestServer.threadId("saver-empty"));
    assertTrue(saver.get(config).isEmpty());
    assertTrue(saver.get(RunnableConfig.builder(config).checkPointId("cp1").build()).isEmpty());
    assertTrue(saver.list(config).isEmpty());
  }

  @Test
  void releaseReturnsTheCheckpointsAndEmptiesTheThread() throws Exception {
    String thread = TestServer.threadId("saver-release");
    RunnableConfig config = config(thread);
    saver.put(config, cp("cp1-v1", Map.of("version", "v1"), "node1", "node2"));
    saver.put(config, cp("cp2-v1", Map.of("version", "v1"), "node2", "node3"));

    BaseCheckpointSaver.Tag tag = saver.release(config);
    assertEquals(thread, tag.threadId());
    assertEquals(List.of("cp2-v1", "cp1-v1"), tag.checkpoints().stream().map(Checkpoint::getId).toList());
    assertTrue(saver.list(config).isEmpty());
    assertTrue(saver.get(config).isEmpty());

    // The thread id can be reused: only the new run is visible.
    saver.put(config, cp("cp1-v2", Map.of("version", "v2"), "node1", "node2"));
    saver.put(config, cp("cp2-v2", Map.of("version", "v2"), "node2", "node3"));
    assertEquals(List.of("cp2-v2", "cp1-v2"), ids(saver, config));
    assertTrue(saver.list(config).stream().allMatch(c -> "v2".equals(c.getState().get("version"))));
    assertEquals(2, saver.clear(config));
  }

  @Test
  void threadsAreIsolated() throws Exception {
    RunnableConfig a = config(TestServer.threadId("saver-iso-a"));
    RunnableConfig b = config(TestServer.threadId("saver-iso-b"));
    saver.put(a, cp("cp1", Map.of("owner", "a"), "n", "m"));
    saver.put(b, cp("cp1", Map.of("owner", "b"), "n", "m"));
    saver.put(b, cp("cp2", Map.of("owner", "b"), "n", "m"));

    assertEquals(List.of("cp1"), ids(saver, a));
    assertEquals(List.of("cp2", "cp1"), ids(saver, b));
    assertEquals("a", saver.get(RunnableConfig.builder(a).checkPointId("cp1").build()).orElseThrow()
        .getState().get("owner"));
    assertTrue(saver.get(RunnableConfig.builder(a).checkPointId("cp2").build()).isEmpty());
    saver.release(a);
    assertEquals(List.of("cp2", "cp1"), ids(saver, b));
  }

  @Test
  void concurrentPutsToOneThreadAreAllKeptInOneChain() throws Exception {
    String thread = TestServer.threadId("saver-concurrent");
    // Two savers (as two processes would have) racing on the same thread.
    CairnSaver other = new CairnSaver(cairn);
    ExecutorService pool = Executors.newFixedThreadPool(10);
    try {
      List<Future<RunnableConfig>> futures = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        int index = i;
        CairnSaver s = i % 2 == 0 ? saver : other;
        futures.add(pool.submit(() -> s.put(config(thread), cp("cp-" + index, Map.of("index", index), "n", "m"))));
      }
      for (Future<RunnableConfig> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
    List<String> listed = ids(saver, config(thread));
    assertEquals(20, listed.size());
    assertEquals(20, new HashSet<>(listed).size());

    // Compare-and-set on the head links every checkpoint to the one before it.
    Map<String, String> parentOf = cairn.listAll(ListRequest.newBuilder().setThreadId(thread).build()).stream()
        .collect(Collectors.toMap(dev.cairn.v1.Checkpoint::getCheckpointId,
            dev.cairn.v1.Checkpoint::getParentCheckpointId));
    for (int i = 0; i < listed.size() - 1; i++) {
      assertEquals(listed.get(i + 1), parentOf.get(listed.get(i)));
    }
    assertEquals("", parentOf.get(listed.get(listed.size() - 1)));
  }

  @Test
  void concurrentReadsOfManyThreads() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<Integer>> futures = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        futures.add(pool.submit(() -> saver.list(config(TestServer.threadId("saver-read"))).size()));
      }
      for (Future<Integer> f : futures) {
        assertEquals(0, f.get());
      }
    } finally {
      pool.shutdown();
    }
  }

  @Test
  void springAiMessagesKeepTheirTypes() throws Exception {
    RunnableConfig config = config(TestServer.threadId("saver-messages"));
    List<Message> messages = List.of(
        SystemMessage.builder().text("System prompt").build(),
        UserMessage.builder().text("User question").build(),
        AssistantMessage.builder().content("Assistant response").build());
    saver.put(config, cp("cp-messages", Map.of("messages", messages, "other", "x"), "node1", "node2"));

    List<?> back = (List<?>) saver.get(config).orElseThrow().getState().get("messages");
    assertInstanceOf(SystemMessage.class, back.get(0));
    assertInstanceOf(UserMessage.class, back.get(1));
    assertInstanceOf(AssistantMessage.class, back.get(2));
    assertEquals("User question", ((UserMessage) back.get(1)).getText());
    assertEquals(UserMessage.class.getName(), JSON.readTree(cairn.load(config.threadId().orElseThrow())
        .getCheckpoint().getState().toByteArray()).get("messages").get(1).get("@class").asText(),
        "messages keep their type hint");
    assertEquals("Assistant response", ((AssistantMessage) back.get(2)).getText());
  }

  @Test
  void binarySerializerStoresItsOwnBytesTaggedWithItsContentType() throws Exception {
    CairnSaver binary = CairnSaver.builder().client(cairn)
        .stateSerializer(new ObjectStreamStateSerializer(OverAllState::new)).build();
    String thread = TestServer.threadId("saver-binary");
    binary.put(config(thread), cp("b1", Map.of("n", 7, "list", List.of("a")), "a", "b"));

    assertEquals("application/octet-stream", cairn.load(thread).getCheckpoint().getStateType());
    assertEquals(Map.of("n", 7, "list", List.of("a")), binary.get(config(thread)).orElseThrow().getState());
    assertThrows(IllegalStateException.class, () -> saver.get(config(thread)), "the JSON saver cannot read it");
  }

  @Test
  void numRetainedKeepsTheNewestCheckpoints() throws Exception {
    CairnSaver retaining = CairnSaver.builder().client(cairn).numRetained(2).build();
    RunnableConfig config = config(TestServer.threadId("saver-retain"));
    retaining.put(config, cp("cp1", Map.of(), "node1", "node2"));
    retaining.put(config, cp("cp2", Map.of("version", 1), "node2", "node3"));
    retaining.put(config, cp("cp3", Map.of(), "node3", "node4"));
    assertEquals(List.of("cp3", "cp2"), ids(retaining, config));
    assertTrue(retaining.get(RunnableConfig.builder(config).checkPointId("cp1").build()).isEmpty());

    retaining.put(RunnableConfig.builder(config).checkPointId("cp2").build(),
        cp("cp2", Map.of("version", 2), "node2", "node3"));
    assertEquals(List.of("cp3", "cp2"), ids(retaining, config));
    assertEquals(Set.of("version"), retaining.get(RunnableConfig.builder(config).checkPointId("cp2").build())
        .orElseThrow().getState().keySet());
  }
}
