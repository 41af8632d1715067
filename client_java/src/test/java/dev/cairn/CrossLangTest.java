package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.alibaba.cloud.ai.graph.RunnableConfig;
import com.alibaba.cloud.ai.graph.checkpoint.Checkpoint;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.cairn.client.Structs;
import dev.cairn.saa.CairnSaver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Checkpoints written by the Python peer (tests/crosslang/peer.py) read from Java, and the reverse. */
class CrossLangTest extends LiveServerTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Path DIR = TestServer.repoRoot().resolve("tests/crosslang");

  /** Runs the peer and returns the JSON line it printed. */
  static JsonNode peer(String... args) throws IOException, InterruptedException {
    String python = System.getenv().getOrDefault("CAIRN_PYTHON", "python3");
    List<String> cmd = new ArrayList<>(List.of(python, DIR.resolve("peer.py").toString()));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("--target", TestServer.target()));
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException("peer.py " + String.join(" ", args) + " failed: " + out);
    }
    String[] lines = out.split("\n");
    return JSON.readTree(lines[lines.length - 1]);
  }

  static byte[] canonicalState() throws IOException {
    return Files.readAllBytes(DIR.resolve("state.json"));
  }

  static byte[] b64(JsonNode node) {
    return Base64.getDecoder().decode(node.get("state_b64").asText());
  }

  @Test
  void javaReadsWhatPythonSaved() throws Exception {
    String thread = TestServer.threadId("crosslang-py");
    JsonNode saved = peer("save", "--thread", thread);
    String id = saved.get("checkpoint_id").asText();

    dev.cairn.v1.Checkpoint cp = cairn.load(thread, id).getCheckpoint();
    assertArrayEquals(canonicalState(), cp.getState().toByteArray());
    assertArrayEquals(b64(saved), cp.getState().toByteArray());
    assertEquals(JSON.readTree(canonicalState()), JSON.readTree(cp.getState().toByteArray()));
    assertEquals("json", cp.getStateType());
    assertEquals("python", Structs.toMap(cp.getMetadata()).get("lang"));
    assertEquals("py", cp.getNodeName());
    assertEquals(List.of("next"), cp.getNextNodesList());
    assertEquals(id, cairn.load(thread).getCheckpoint().getCheckpointId());

    // The Spring AI Alibaba saver reads it too, as the JSON object it is.
    Checkpoint viaSaver = new CairnSaver(cairn).get(RunnableConfig.builder().threadId(thread).build()).orElseThrow();
    assertEquals(id, viaSaver.getId());
    assertEquals("py", viaSaver.getNodeId());
    assertEquals("next", viaSaver.getNextNodeId());
    assertEquals(JSON.readTree(canonicalState()), JSON.valueToTree(viaSaver.getState()));
  }

  @Test
  void pythonReadsWhatJavaSaved() throws Exception {
    String thread = TestServer.threadId("crosslang-java");
    String id = cairn.save(dev.cairn.v1.Checkpoint.newBuilder().setThreadId(thread)
        .setState(ByteString.copyFrom(canonicalState())).setStateType("json")
        .setMetadata(Structs.of(Map.of("lang", "java"))).setNodeName("java").addNextNodes("next")
        .build()).getCheckpointId();

    JsonNode loaded = peer("load", "--thread", thread, "--checkpoint", id);
    assertEquals(id, loaded.get("checkpoint_id").asText());
    assertArrayEquals(canonicalState(), b64(loaded));
    assertEquals("json", loaded.get("state_type").asText());
    assertEquals("java", loaded.get("metadata").get("lang").asText());
    assertEquals("java", loaded.get("node_name").asText());
    assertEquals(JSON.readTree("[\"next\"]"), loaded.get("next_nodes"));
    assertEquals(id, peer("load", "--thread", thread).get("checkpoint_id").asText(), "the head");
  }

  @Test
  void pythonReadsTheSaversJson() throws Exception {
    String thread = TestServer.threadId("crosslang-saver");
    Map<String, Object> state = Map.of("text", "héllo", "n", 3, "items", List.of(1, 2), "nested", Map.of("ok", true));
    new CairnSaver(cairn).put(RunnableConfig.builder().threadId(thread).build(),
        Checkpoint.builder().id("saa-1").state(state).nodeId("agent").nextNodeId("tools").build());

    JsonNode loaded = peer("load", "--thread", thread);
    assertEquals("saa-1", loaded.get("checkpoint_id").asText());
    assertEquals("json", loaded.get("state_type").asText());
    assertEquals(JSON.valueToTree(state), JSON.readTree(b64(loaded)));
    assertEquals("agent", loaded.get("node_name").asText());
    assertEquals(JSON.readTree("[\"tools\"]"), loaded.get("next_nodes"));
  }
}
