package dev.cairn.client;

import java.security.SecureRandom;
import java.util.UUID;

/** Client-side checkpoint ids: UUIDv7 (RFC 9562), which sort by creation time. */
public final class CheckpointIds {
  private static final SecureRandom RANDOM = new SecureRandom();

  private CheckpointIds() {}

  /** A new UUIDv7 string, e.g. {@code 0190f1c2-7a3b-7c4d-9e5f-0123456789ab}. */
  public static String newId() {
    long millis = System.currentTimeMillis();
    long msb = (millis << 16) | 0x7000L | (RANDOM.nextInt() & 0x0FFFL);
    long lsb = (RANDOM.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
    return new UUID(msb, lsb).toString();
  }
}
