package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.cairn.client.CairnClient;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.UnauthenticatedException;
import dev.cairn.v1.Checkpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A server of its own, on a unix socket with bearer-token auth: the unix: target and the token option. */
class UnixSocketAuthTest {
  static TestServer.Server server;

  @BeforeAll
  static void start() throws Exception {
    Path dir = Files.createTempDirectory("cairn-java-uds");
    Path tokens = Files.writeString(dir.resolve("tokens"), "tok-a tenant-a\ntok-b tenant-b\n");
    server = TestServer.start(dir.resolve("cairn.sock"), "--auth-tokens-file", tokens.toString());
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  static CairnClient client(String token) {
    return CairnClient.builder().target(server.target()).token(token).build();
  }

  @Test
  void unixSocketTargetWithTokenWorksAndTenantsAreIsolated() {
    assertEquals('u', server.target().charAt(0), server.target());
    String thread = TestServer.threadId("uds");
    try (CairnClient a = client("tok-a"); CairnClient b = client("tok-b")) {
      String id = a.save(Checkpoint.newBuilder().setThreadId(thread)
          .setState(ByteString.copyFromUtf8("{}")).setStateType("json").build()).getCheckpointId();
      assertEquals(id, a.load(thread).getCheckpoint().getCheckpointId());
      NotFoundException other = assertThrows(NotFoundException.class, () -> b.load(thread));
      assertEquals("THREAD_EMPTY", other.reason());
    }
  }

  @Test
  void missingOrWrongTokenIsUnauthenticated() {
    try (CairnClient none = client(null); CairnClient wrong = client("nope")) {
      assertEquals("MISSING_TOKEN", assertThrows(UnauthenticatedException.class, () -> none.load("t")).reason());
      assertEquals("INVALID_TOKEN", assertThrows(UnauthenticatedException.class, () -> wrong.load("t")).reason());
    }
  }
}
