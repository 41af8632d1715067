package dev.cairn.client;

import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/**
 * Converts between Java maps and {@code google.protobuf.Struct}, the type of checkpoint metadata.
 * Java values map to JSON: null, Boolean, Number, CharSequence, Map and Iterable. Numbers come back
 * as {@link Double}, as in JSON.
 *
 * <p>Struct numbers are doubles, so an integer beyond ±(2^53−1) (9007199254740991) would be stored
 * rounded: {@link #of} refuses one, at any depth, with an {@link IllegalArgumentException} (store it as a
 * string). Integers are Long, Integer, Short, Byte, BigInteger, AtomicInteger, AtomicLong, LongAdder,
 * LongAccumulator and a BigDecimal with an integral value; Double and Float are taken as they are.
 */
public final class Structs {
  private Structs() {}

  /** 2^53−1, the largest magnitude up to which every integer is a double. */
  static final long MAX_SAFE_INTEGER = (1L << 53) - 1;

  private static final BigInteger MAX_SAFE = BigInteger.valueOf(MAX_SAFE_INTEGER);

  /**
   * The Struct holding {@code map} (an empty Struct for null); used for metadata and metadata filters.
   *
   * @throws IllegalArgumentException for a value that is not JSON, or an integer beyond ±(2^53−1)
   */
  public static Struct of(Map<String, ?> map) {
    Struct.Builder b = Struct.newBuilder();
    if (map != null) {
      map.forEach((k, v) -> b.putFields(k, value(k, v)));
    }
    return b.build();
  }

  /** The Struct as a map of plain Java values (String, Double, Boolean, null, List, Map). */
  public static Map<String, Object> toMap(Struct struct) {
    Map<String, Object> out = new LinkedHashMap<>();
    struct.getFieldsMap().forEach((k, v) -> out.put(k, plain(v)));
    return out;
  }

  static Value value(Object v) {
    return value("", v);
  }

  /** {@code v} as a Value; {@code path} names it in errors ({@code ids.0.big}: keys and list indexes). */
  private static Value value(String path, Object v) {
    if (v == null) {
      return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
    } else if (v instanceof Value) {
      return (Value) v;
    } else if (v instanceof Boolean) {
      return Value.newBuilder().setBoolValue((Boolean) v).build();
    } else if (v instanceof Number) {
      checkSafeInteger(path, (Number) v);
      return Value.newBuilder().setNumberValue(((Number) v).doubleValue()).build();
    } else if (v instanceof CharSequence) {
      return Value.newBuilder().setStringValue(v.toString()).build();
    } else if (v instanceof Map) {
      Struct.Builder s = Struct.newBuilder();
      ((Map<?, ?>) v).forEach((k, x) -> s.putFields(String.valueOf(k), value(join(path, String.valueOf(k)), x)));
      return Value.newBuilder().setStructValue(s).build();
    } else if (v instanceof Iterable) {
      ListValue.Builder l = ListValue.newBuilder();
      for (Object x : (Iterable<?>) v) {
        l.addValues(value(join(path, Integer.toString(l.getValuesCount())), x));
      }
      return Value.newBuilder().setListValue(l).build();
    }
    throw new IllegalArgumentException("not a JSON value: " + v.getClass().getName());
  }

  private static String join(String path, String key) {
    return path.isEmpty() ? key : path + "." + key;
  }

  /** Refuses an integer that a double cannot hold exactly (beyond ±(2^53−1)); other numbers pass. */
  private static void checkSafeInteger(String path, Number n) {
    BigInteger i;
    if (n instanceof Long || n instanceof Integer || n instanceof Short || n instanceof Byte
        || n instanceof AtomicInteger || n instanceof AtomicLong || n instanceof LongAdder
        || n instanceof LongAccumulator) {
      long l = n.longValue();
      if (l >= -MAX_SAFE_INTEGER && l <= MAX_SAFE_INTEGER) {
        return;
      }
      i = BigInteger.valueOf(l);
    } else if (n instanceof BigInteger) {
      i = (BigInteger) n;
    } else if (n instanceof BigDecimal) {
      BigDecimal d = (BigDecimal) n;
      if (d.scale() > 0 && d.signum() != 0 && d.stripTrailingZeros().scale() > 0) {
        return; // has a fraction: a float
      }
      if (d.abs().compareTo(new BigDecimal(MAX_SAFE)) <= 0) {
        return;
      }
      i = d.toBigInteger();
    } else {
      return; // Double, Float and other numbers: doubles already, or as the caller made them
    }
    if (i.abs().compareTo(MAX_SAFE) > 0) {
      throw new IllegalArgumentException("metadata value at \"" + path + "\" is the integer " + i
          + ", beyond ±(2^53−1): metadata travels as google.protobuf.Struct, whose numbers are doubles,"
          + " so it would be stored rounded; store it as a string");
    }
  }

  static Object plain(Value v) {
    switch (v.getKindCase()) {
      case BOOL_VALUE: return v.getBoolValue();
      case NUMBER_VALUE: return v.getNumberValue();
      case STRING_VALUE: return v.getStringValue();
      case STRUCT_VALUE: return toMap(v.getStructValue());
      case LIST_VALUE:
        List<Object> list = new ArrayList<>();
        v.getListValue().getValuesList().forEach(x -> list.add(plain(x)));
        return list;
      default: return null;
    }
  }
}
