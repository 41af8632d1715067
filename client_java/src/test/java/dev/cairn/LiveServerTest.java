package dev.cairn;

import dev.cairn.client.CairnClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** A test class against the shared server: {@code cairn} is connected before its first test, closed after its last. */
abstract class LiveServerTest {
  static CairnClient cairn;

  @BeforeAll
  static void connect() {
    cairn = TestServer.client();
  }

  @AfterAll
  static void close() {
    cairn.close();
  }
}
