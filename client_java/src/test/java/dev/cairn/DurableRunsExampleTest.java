package dev.cairn;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The README's durable-runs example runs as written and prints what its comments say. */
class DurableRunsExampleTest {
  @Test
  void readmeExampleRuns() throws Exception {
    PrintStream out = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      DurableRunsExample.main(new String[] {TestServer.target()});
    } finally {
      System.setOut(out);
    }
    assertEquals("RUN_STATUS_COMPLETED {\"name\":\"cairn\",\"greeting\":\"hello cairn\"}\ntrue\nRUN_STATUS_CANCELLED\nLEASE_LOST\n",
        buf.toString(StandardCharsets.UTF_8));
  }
}
