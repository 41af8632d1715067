package dev.cairn.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.Struct;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;

/**
 * Metadata to Struct without a server: an integer a double cannot hold exactly (beyond ±(2^53−1)) is
 * refused rather than stored rounded, in metadata and in metadata filters (both are {@link Structs#of}).
 */
class StructsTest {
  /** 2^60+1; as a double 1152921504606846976. */
  static final long BIG = (1L << 60) + 1;
  static final long MAX_SAFE = 9007199254740991L;

  static void refused(Map<String, ?> metadata, String path, String integer) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Structs.of(metadata));
    assertEquals("metadata value at \"" + path + "\" is the integer " + integer + ", beyond ±(2^53−1): metadata"
        + " travels as google.protobuf.Struct, whose numbers are doubles, so it would be stored rounded;"
        + " store it as a string", e.getMessage());
  }

  static double number(Struct s, String key) {
    return s.getFieldsOrThrow(key).getNumberValue();
  }

  @Test
  void integerBeyondDoublesIsRefused() {
    refused(Map.of("big", BIG), "big", "1152921504606846977");
    refused(Map.of("big", -BIG), "big", "-1152921504606846977");
    refused(Map.of("big", Long.MIN_VALUE), "big", "-9223372036854775808");
    refused(Map.of("big", BigInteger.valueOf(BIG)), "big", "1152921504606846977");
    refused(Map.of("big", BigInteger.TWO.pow(64)), "big", "18446744073709551616");
    refused(Map.of("big", new AtomicLong(BIG)), "big", "1152921504606846977");
    LongAdder adder = new LongAdder();
    adder.add(BIG);
    refused(Map.of("big", adder), "big", "1152921504606846977");
    refused(Map.of("big", new BigDecimal(BIG)), "big", "1152921504606846977");
    refused(Map.of("big", new BigDecimal("1152921504606846977.000")), "big", "1152921504606846977");
    refused(Map.of("big", new BigDecimal("1.2E+18")), "big", "1200000000000000000");
  }

  @Test
  void integerBeyondDoublesIsRefusedAtAnyDepth() {
    Map<String, Object> withList = new LinkedHashMap<>();
    withList.put("a", "x");
    withList.put("ids", List.of(Map.of("small", 1), Map.of("big", BIG)));
    refused(withList, "ids.1.big", "1152921504606846977");
    refused(Map.of("m", Map.of("n", Map.of("big", BigInteger.valueOf(BIG)))), "m.n.big", "1152921504606846977");
    refused(Map.of("ids", List.of(List.of(1L, -BIG))), "ids.0.1", "-1152921504606846977");
    refused(Map.of("ids", Arrays.asList(null, BIG)), "ids.1", "1152921504606846977");
    refused(Map.of("m", Map.of(7, BIG)), "m.7", "1152921504606846977");
  }

  @Test
  void integerBoundary() {
    Struct s = Structs.of(Map.of("max", MAX_SAFE, "min", -MAX_SAFE, "bi", BigInteger.valueOf(MAX_SAFE),
        "bd", new BigDecimal(-MAX_SAFE), "int", Integer.MIN_VALUE, "short", (short) 7, "byte", (byte) -1,
        "atomic", new AtomicInteger(Integer.MAX_VALUE)));
    assertEquals(9007199254740991.0, number(s, "max"));
    assertEquals(-9007199254740991.0, number(s, "min"));
    assertEquals(9007199254740991.0, number(s, "bi"));
    assertEquals(-9007199254740991.0, number(s, "bd"));
    assertEquals((double) Integer.MIN_VALUE, number(s, "int"));
    assertEquals(MAX_SAFE, (long) number(s, "max"), "the boundary is exact");

    refused(Map.of("big", MAX_SAFE + 1), "big", "9007199254740992");
    refused(Map.of("big", -MAX_SAFE - 1), "big", "-9007199254740992");
    refused(Map.of("big", BigInteger.valueOf(MAX_SAFE + 1)), "big", "9007199254740992");
    refused(Map.of("big", new BigDecimal(MAX_SAFE + 1)), "big", "9007199254740992");
  }

  /** Doubles are doubles already: none is refused, whatever its value. */
  @Test
  void floatsAreAccepted() {
    Struct s = Structs.of(Map.of("huge", 1e300, "neg", List.of(-1e300), "half", 1.5, "integral", (double) (1L << 60),
        "float", 1e30f, "fraction", new BigDecimal("1152921504606846977.5"), "tiny", new BigDecimal("0.000")));
    assertEquals(1e300, number(s, "huge"));
    assertEquals(-1e300, s.getFieldsOrThrow("neg").getListValue().getValues(0).getNumberValue());
    assertEquals(1.5, number(s, "half"));
    assertEquals((double) (1L << 60), number(s, "integral"));
    assertEquals(1152921504606846977.5, number(s, "fraction"));
    assertEquals(0.0, number(s, "tiny"));
  }

  @Test
  void otherValuesAreUnchanged() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("s", "1152921504606846977");
    m.put("b", true);
    m.put("nil", null);
    m.put("l", List.of("a", 1));
    Map<String, Object> back = new LinkedHashMap<>();
    back.put("s", "1152921504606846977");
    back.put("b", true);
    back.put("nil", null);
    back.put("l", List.of("a", 1.0));
    assertEquals(back, Structs.toMap(Structs.of(m)));
    assertEquals(Struct.getDefaultInstance(), Structs.of(null));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Structs.of(Map.of("o", new Object())));
    assertEquals("not a JSON value: java.lang.Object", e.getMessage());
  }
}
