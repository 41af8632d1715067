package dev.cairn;

import dev.cairn.client.CairnClient;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * The Cairn servers the tests talk to, as the Python harness names them: it starts the shared ones
 * ({@code python -m cairn_tools.cluster -- mvn test}, which run_tests.sh and scripts/test_all.sh use; see
 * tools/cairn_tools/cluster.py) and exports {@code CAIRN_TARGET} and the rest. A test that needs server flags the
 * shared server lacks gets a server of its own from {@link #start}, which the same harness starts too.
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

  /**
   * Starts {@code cairn serve ARGS} on the embedded store through the harness's CairnProcess (a free port, ready
   * when it answers), prints its target, and stops it when its stdin closes: when the test closes it, or when the
   * JVM dies (the harness's watchdog then kills the server). The server reads CAIRN_* variables as its settings,
   * and the harness's (such as CAIRN_AUTH_TOKENS) describe other servers: only ARGS set this one.
   */
  private static final String START_SCRIPT = String.join("\n",
      "import os, sys",
      "from cairn_tools.cluster import CairnProcess",
      "for name in [n for n in os.environ if n.startswith('CAIRN_') and n != 'CAIRN_BIN'"
          + " and not n.startswith('CAIRN_TEST_')]:",
      "    del os.environ[name]",
      "with CairnProcess.embedded(*sys.argv[1:], '--log-level', 'WARNING') as server:",
      "    print(server.target, flush=True)",
      "    sys.stdin.read()",
      "");

  /** A server of a test's own, from {@link #start}; {@link #close} stops it. */
  public static final class Own implements AutoCloseable {
    private final Process process;
    private final String target;

    private Own(Process process, String target) {
      this.process = process;
      this.target = target;
    }

    /** Its host:port. */
    public String target() {
      return target;
    }

    @Override
    public void close() throws IOException, InterruptedException {
      process.getOutputStream().close();
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    }
  }

  /**
   * Starts a Cairn server of the test's own ({@code cairn serve args...} on the embedded store), for server flags
   * the shared server lacks. Python is $CAIRN_PYTHON, else python3, with the repository installed.
   */
  public static Own start(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(System.getenv().getOrDefault("CAIRN_PYTHON", "python3"), "-c",
        START_SCRIPT));
    cmd.addAll(Arrays.asList(args));
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String line = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
    if (line == null || line.isBlank()) {
      p.waitFor(10, TimeUnit.SECONDS);
      throw new IllegalStateException("cairn serve " + String.join(" ", args) + " did not start (see stderr): run "
          + "the tests after `pip install -e '.[dev]'` in the repository root");
    }
    return new Own(p, line.trim());
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
