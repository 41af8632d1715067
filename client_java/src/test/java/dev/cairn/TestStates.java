package dev.cairn;

import java.nio.charset.StandardCharsets;
import java.util.Random;

/** States for the compression tests. */
public final class TestStates {
  private static final String[] WORDS = {"tool", "call", "agent", "search", "result", "weather", "plan",
      "step", "user", "assistant", "order", "refund", "the", "a", "of", "to", "and", "status", "pending", "done"};

  private TestStates() {}

  /** About {@code bytes} of agent-like JSON (chat messages): compressible, but not trivially. */
  public static byte[] compressible(int bytes, long seed) {
    Random random = new Random(seed);
    StringBuilder sb = new StringBuilder("{\"messages\":[");
    for (int i = 0; sb.length() < bytes - 80; i++) {
      sb.append(i == 0 ? "" : ",").append("{\"role\":\"").append(i % 2 == 0 ? "user" : "assistant")
          .append("\",\"id\":").append(random.nextInt(1_000_000)).append(",\"content\":\"");
      for (int w = 0; w < 12; w++) {
        sb.append(WORDS[random.nextInt(WORDS.length)]).append(' ');
      }
      sb.append("\"}");
    }
    return sb.append("],\"seed\":").append(seed).append('}').toString().getBytes(StandardCharsets.UTF_8);
  }
}
