package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.cairn.client.CairnClient;
import dev.cairn.v1.Checkpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** {@code channels(n)}: n TCP connections, calls in turn, so {@code cairn serve --workers N} all serve. */
class ChannelPoolTest {

  /** Inodes of this JVM's sockets connected (ESTABLISHED) to {@code port}, from /proc (Linux). */
  private static Set<String> connectionsTo(int port) throws IOException {
    Set<String> mine = new HashSet<>();
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      for (Path fd : (Iterable<Path>) fds::iterator) {
        try {
          String link = Files.readSymbolicLink(fd).toString();
          if (link.startsWith("socket:[")) {
            mine.add(link.substring(8, link.length() - 1));
          }
        } catch (IOException e) {
          // an fd closed while listing
        }
      }
    }
    Set<String> out = new HashSet<>();
    for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
      List<String> lines = Files.readAllLines(Path.of(table));
      for (String line : lines.subList(1, lines.size())) {
        String[] f = line.trim().split("\\s+");
        String remote = f[2];
        int remotePort = Integer.parseInt(remote.substring(remote.lastIndexOf(':') + 1), 16);
        if (remotePort == port && f[3].equals("01") && mine.contains(f[9])) {
          out.add(f[9]);
        }
      }
    }
    return out;
  }

  @Test
  void callsGoOverEveryChannel() throws IOException {
    String target = TestServer.target();
    int port = Integer.parseInt(target.substring(target.lastIndexOf(':') + 1));
    Set<String> before = connectionsTo(port);
    String thread = TestServer.threadId("pool");
    try (CairnClient pooled = CairnClient.builder().target(target).token(System.getenv("CAIRN_TOKEN"))
        .deadline(Duration.ofSeconds(30)).channels(3).build()) {
      String parent = "";
      for (int step = 0; step < 9; step++) {
        Checkpoint cp = Checkpoint.newBuilder().setThreadId(thread).setParentCheckpointId(parent)
            .setState(ByteString.copyFromUtf8("{\"step\":" + step + "}")).setStateType("json").build();
        parent = pooled.save(cp).getCheckpointId();
        assertEquals(parent, pooled.load(thread).getCheckpoint().getCheckpointId());
      }
      Set<String> opened = connectionsTo(port);
      opened.removeAll(before);
      assertEquals(3, opened.size(), "one connection per channel, each used");
    }
  }

  @Test
  void fewerThanOneChannelIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> CairnClient.builder().channels(0));
  }
}
