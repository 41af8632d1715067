package dev.cairn;

import dev.cairn.client.CairnClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;

/**
 * The Cairn server the tests talk to: {@code CAIRN_TARGET} when set, otherwise one {@code cairn serve}
 * (embedded default, temp SQLite file, free port) started for the whole test JVM and stopped at exit.
 */
public final class TestServer {
  private static String target;

  private TestServer() {}

  /** host:port of the server, starting it on first use. */
  public static synchronized String target() {
    if (target == null) {
      String env = System.getenv("CAIRN_TARGET");
      target = env != null && !env.isBlank() ? env.trim() : start();
    }
    return target;
  }

  /** A client of the test server. */
  public static CairnClient client() {
    return CairnClient.builder().target(target()).token(System.getenv("CAIRN_TOKEN"))
        .deadline(Duration.ofSeconds(30)).build();
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

  private static String start() {
    try {
      int port;
      try (ServerSocket s = new ServerSocket(0)) {
        port = s.getLocalPort();
      }
      Path dir = Files.createTempDirectory("cairn-java-test");
      Path log = dir.resolve("server.log");
      ProcessBuilder pb = new ProcessBuilder("cairn", "serve", "--listen", "127.0.0.1:" + port,
          "--sqlite-path", dir.resolve("cairn.db").toString())
          .redirectErrorStream(true).redirectOutput(log.toFile());
      Process p;
      try {
        p = pb.start();
      } catch (IOException e) {
        throw new IllegalStateException(howToRun("`cairn` is not on PATH"), e);
      }
      Runtime.getRuntime().addShutdownHook(new Thread(p::destroy));
      // Wait until the server accepts connections (or dies, or a generous start-up limit passes).
      long giveUp = System.nanoTime() + Duration.ofSeconds(120).toNanos();
      while (true) {
        if (System.nanoTime() > giveUp) {
          p.destroy();
          throw new IllegalStateException("`cairn serve` did not accept connections:\n" + Files.readString(log));
        }
        if (!p.isAlive()) {
          throw new IllegalStateException(howToRun("`cairn serve` exited with " + p.exitValue()
              + ":\n" + Files.readString(log)));
        }
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
          return "127.0.0.1:" + port;
        } catch (IOException notYet) {
          Thread.sleep(200);
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static String howToRun(String problem) {
    return problem + ". Set CAIRN_TARGET=host:port of a running Cairn server, or install the server "
        + "with `pip install -e '.[server]'` in the repository root so the tests can start `cairn serve`.";
  }
}
