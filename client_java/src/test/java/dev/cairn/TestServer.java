package dev.cairn;

import dev.cairn.client.CairnClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The Cairn server the tests talk to: {@code CAIRN_TARGET} when set, otherwise one {@code cairn serve}
 * (embedded default, temp SQLite file, free port) started for the whole test JVM and stopped at exit.
 */
public final class TestServer {
  private static String target;

  private TestServer() {}

  /** host:port of the shared server, starting it on first use. */
  public static synchronized String target() {
    if (target == null) {
      String env = System.getenv("CAIRN_TARGET");
      if (env != null && !env.isBlank()) {
        target = env.trim();
      } else {
        Server server = start(null);
        Runtime.getRuntime().addShutdownHook(new Thread(server::close));
        target = server.target();
      }
    }
    return target;
  }

  /** A client of the shared server, sending $CAIRN_TOKEN when set. */
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

  /** A running {@code cairn serve} process started by the tests. */
  public record Server(String target, Process process, Path dir) implements AutoCloseable {
    @Override
    public void close() {
      process.destroy();
      try {
        process.waitFor();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Starts {@code cairn serve} on a temp SQLite file; {@code unixSocket} null listens on a free local
   * port, else on that socket. Returns once it accepts connections.
   */
  public static Server start(Path unixSocket, String... extraArgs) {
    try {
      Path dir = Files.createTempDirectory("cairn-java-test");
      String listen;
      SocketAddress address;
      if (unixSocket == null) {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
          port = s.getLocalPort();
        }
        listen = "127.0.0.1:" + port;
        address = new InetSocketAddress("127.0.0.1", port);
      } else {
        listen = "unix:" + unixSocket;
        address = UnixDomainSocketAddress.of(unixSocket);
      }
      List<String> cmd = new ArrayList<>(List.of("cairn", "serve", "--listen", listen,
          "--sqlite-path", dir.resolve("cairn.db").toString(), "--log-level", "WARNING"));
      cmd.addAll(List.of(extraArgs));
      Path log = dir.resolve("server.log");
      Process p;
      try {
        p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
      } catch (IOException e) {
        throw new IllegalStateException(howToRun("`cairn` is not on PATH"), e);
      }
      Server server = new Server(listen, p, dir);
      // Wait until the server accepts connections (or dies, or a generous start-up limit passes).
      long giveUp = System.nanoTime() + Duration.ofSeconds(120).toNanos();
      while (true) {
        if (!p.isAlive()) {
          throw new IllegalStateException(howToRun("`cairn serve` exited with " + p.exitValue()
              + ":\n" + Files.readString(log)));
        }
        if (System.nanoTime() > giveUp) {
          server.close();
          throw new IllegalStateException("`cairn serve` did not accept connections:\n" + Files.readString(log));
        }
        try (SocketChannel ch = SocketChannel.open(unixSocket == null
            ? StandardProtocolFamily.INET : StandardProtocolFamily.UNIX)) {
          ch.connect(address);
          return server;
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
