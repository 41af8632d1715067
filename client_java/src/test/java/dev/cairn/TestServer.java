package dev.cairn;

import dev.cairn.client.CairnClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/**
 * The Cairn servers the tests talk to, as the Python harness names them: it starts them all
 * ({@code python -m cairn_tools.cluster -- mvn test}, which run_tests.sh and scripts/test_all.sh use; see
 * tools/cairn_tools/cluster.py) and exports {@code CAIRN_TARGET} and the rest. Nothing is started here.
 */
public final class TestServer {
  private TestServer() {}

  /** host:port of the shared server ({@code CAIRN_TARGET}). */
  public static String target() {
    return env("CAIRN_TARGET");
  }

  /** A client of the shared server, sending $CAIRN_TOKEN when set. */
  public static CairnClient client() {
    return CairnClient.builder().target(target()).token(System.getenv("CAIRN_TOKEN"))
        .deadline(Duration.ofSeconds(30)).build();
  }

  /** The unix: target of the harness's server with bearer-token auth ({@code CAIRN_AUTH_TARGET}). */
  public static String authTarget() {
    return env("CAIRN_AUTH_TARGET");
  }

  /** That server's tokens ({@code CAIRN_AUTH_TOKENS}), each mapped to a tenant of its own. */
  public static List<String> authTokens() {
    return Arrays.stream(env("CAIRN_AUTH_TOKENS").trim().split("\\s+")).toList();
  }

  /** A thread id no other test (or suite sharing the server) uses. */
  public static String threadId(String prefix) {
    return "java-" + prefix + "-" + UUID.randomUUID();
  }

  /** The repository root (the parent of client_java). */
  public static Path repoRoot() {
    Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
    for (Path p = dir; p != null; p = p.getParent()) {
      if (Files.exists(p.resolve("proto/cairn/v1/checkpoint_store.proto"))) {
        return p;
      }
    }
    throw new IllegalStateException("cannot find the repository root above " + dir);
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isBlank()) {
      throw new IllegalStateException("$" + name + " is not set: run the tests through the Python harness, which "
          + "starts the servers and sets CAIRN_TARGET and the rest: `python -m cairn_tools.cluster -- mvn test` "
          + "(or client_java/run_tests.sh), after `pip install -e '.[dev]'` in the repository root");
    }
    return value.trim();
  }
}
