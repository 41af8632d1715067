package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.cairn.client.CairnClient;
import dev.cairn.client.NotFoundException;
import dev.cairn.client.UnauthenticatedException;
import dev.cairn.v1.Checkpoint;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The harness's server on a unix socket with bearer-token auth: the unix: target and the token option. */
class UnixSocketAuthTest {
  static CairnClient client(String token) {
    return CairnClient.builder().target(TestServer.authTarget()).token(token).build();
  }

  @Test
  void unixSocketTargetWithTokenWorksAndTenantsAreIsolated() {
    assertEquals('u', TestServer.authTarget().charAt(0), TestServer.authTarget());
    String thread = TestServer.threadId("uds");
    List<String> tokens = TestServer.authTokens();
    try (CairnClient a = client(tokens.get(0)); CairnClient b = client(tokens.get(1))) {
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
