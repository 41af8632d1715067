package dev.cairn.client;

import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Converts between Java maps and {@code google.protobuf.Struct}, the type of checkpoint metadata.
 * Java values map to JSON: null, Boolean, Number, CharSequence, Map and Iterable. Numbers come back
 * as {@link Double}, as in JSON.
 */
public final class Structs {
  private Structs() {}

  /** The Struct holding {@code map} (an empty Struct for null). */
  public static Struct of(Map<String, ?> map) {
    Struct.Builder b = Struct.newBuilder();
    if (map != null) {
      map.forEach((k, v) -> b.putFields(k, value(v)));
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
    if (v == null) {
      return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
    } else if (v instanceof Value) {
      return (Value) v;
    } else if (v instanceof Boolean) {
      return Value.newBuilder().setBoolValue((Boolean) v).build();
    } else if (v instanceof Number) {
      return Value.newBuilder().setNumberValue(((Number) v).doubleValue()).build();
    } else if (v instanceof CharSequence) {
      return Value.newBuilder().setStringValue(v.toString()).build();
    } else if (v instanceof Map) {
      Struct.Builder s = Struct.newBuilder();
      ((Map<?, ?>) v).forEach((k, x) -> s.putFields(String.valueOf(k), value(x)));
      return Value.newBuilder().setStructValue(s).build();
    } else if (v instanceof Iterable) {
      ListValue.Builder l = ListValue.newBuilder();
      ((Iterable<?>) v).forEach(x -> l.addValues(value(x)));
      return Value.newBuilder().setListValue(l).build();
    }
    throw new IllegalArgumentException("not a JSON value: " + v.getClass().getName());
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
