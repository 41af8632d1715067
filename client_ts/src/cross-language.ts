/**
 * What lets a LangGraph thread cross between Python and JavaScript through Cairn.
 *
 * The common encoding is LangGraph.js's own: serde type "json", UTF-8 JSON in which a LangChain message is
 * a LangChain constructor record whose id is the JavaScript one,
 *
 *     {"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "HumanMessage"], "kwargs": {...}}
 *
 * LangGraph.js's JsonPlusSerializer writes and reads it, and Python's JsonPlusSerializer reads it (langchain_core
 * maps these ids to its classes). The Python CairnSaver writes it with `cross_language=True`.
 *
 * Python's default encoding is "msgpack" (ormsgpack with LangGraph's extension types). {@link CrossLanguageSerializer}
 * reads it too, for the values both languages have: dicts, lists, strings, numbers, booleans, None, bytes,
 * LangChain messages, and a few standard types mapped to their JavaScript form (uuid.UUID: its string, datetime:
 * its ISO string, set/frozenset: Set, deque and tuple: array, LangGraph's Interrupt: `{ value, id }`). Any other
 * Python object (a dataclass, a pydantic model other than a message, a Send, ...) fails with an error naming its
 * type: it has no JavaScript counterpart.
 *
 * Channel versions: Python's LangGraph savers use strings ("<32-digit counter>.<random>"), LangGraph.js's base
 * saver numbers, and LangGraph compares them with `>`, which fails (Python) or misorders (JavaScript) when
 * a channel has both. {@link nextChannelVersion} therefore makes Python's strings, and continues numbers only
 * for channels that already have one (threads written before).
 */
import { ExtensionCodec, decode } from "@msgpack/msgpack";
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";

// LangGraph Python's msgpack extension types that need a case here (langgraph/checkpoint/serde/jsonplus.py).
const EXT_PYDANTIC_V1 = 4;
const EXT_PYDANTIC_V2 = 5;
const EXT_NUMPY_ARRAY = 6;
const EXT_DELTA_SNAPSHOT = 7;

/** A Python value of msgpack that has no counterpart in LangGraph.js. */
export class NoJavaScriptCounterpartError extends Error {
  constructor(pythonType: string) {
    super(
      `a Python ${pythonType} has no JavaScript counterpart, so this checkpoint value cannot be read by ` +
        "LangGraph.js; keep such values out of state shared across languages (see client_ts/README.md, " +
        '"LangGraph across Python and JavaScript")',
    );
    this.name = "NoJavaScriptCounterpartError";
  }
}

/** A LangChain message class name as Python's langchain_core.messages modules define it. */
const MESSAGE_CLASS = /^(Human|AI|System|Tool|Function|Chat|Remove)Message(Chunk)?$/;

/** The JSON form (LangGraph.js's JsonPlusSerializer input) of one Python extension value. */
function fromPythonExt(type: number, data: Uint8Array): unknown {
  const inner = decode(data, { extensionCodec: codec });
  if (type === EXT_DELTA_SNAPSHOT) return { lc: 2, type: "delta_snapshot", value: inner };
  if (type === EXT_NUMPY_ARRAY) throw new NoJavaScriptCounterpartError("numpy array");
  if (!Array.isArray(inner)) throw new NoJavaScriptCounterpartError(`object (msgpack extension type ${type})`);
  const [module, name, arg] = inner as [string, string, unknown];
  const qualified = `${module}.${name}`;
  if ((type === EXT_PYDANTIC_V2 || type === EXT_PYDANTIC_V1) && module.startsWith("langchain_core.messages")) {
    if (!MESSAGE_CLASS.test(name)) throw new NoJavaScriptCounterpartError(qualified);
    // Python dumps every field; None ones are left out, as LangChain's own JSON leaves out defaults.
    const kwargs = Object.fromEntries(Object.entries(arg as Record<string, unknown>).filter(([, v]) => v !== null));
    return { lc: 1, type: "constructor", id: ["langchain_core", "messages", name], kwargs };
  }
  if (type !== EXT_PYDANTIC_V1 && type !== EXT_PYDANTIC_V2) {
    switch (qualified) {
      case "uuid.UUID": {
        const hex = String(arg);
        return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      }
      case "datetime.datetime":
        return String(arg); // the ISO string: what a JavaScript Date becomes in JSON
      case "builtins.set":
      case "builtins.frozenset":
        return { lc: 2, type: "constructor", id: ["Set"], method: null, args: [arg], kwargs: {} };
      case "collections.deque":
        return arg;
      case "langgraph.types.Interrupt":
        return arg; // { value, id }, LangGraph.js's interrupt
    }
  }
  throw new NoJavaScriptCounterpartError(qualified);
}

const codec = new ExtensionCodec();
for (const type of [0, 1, 2, 3, 4, 5, 6, 7]) {
  codec.register({
    type,
    encode: () => null, // decode only
    decode: (data: Uint8Array) => fromPythonExt(type, data),
  });
}

/** Bytes become LangGraph.js's JSON record of a Uint8Array; everything else is already JSON's. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return { lc: 2, type: "constructor", id: ["Uint8Array"], method: "from", args: [Array.from(value)], kwargs: {} };
  }
  return value;
}

/**
 * Reads what LangGraph Python's JsonPlusSerializer writes ("msgpack", "null", "bytearray", besides the "json"
 * and "bytes" LangGraph.js reads), and writes through the wrapped serializer (LangGraph.js's JsonPlusSerializer
 * by default: "json", the common encoding).
 */
export class CrossLanguageSerializer implements SerializerProtocol {
  constructor(readonly inner: SerializerProtocol) {}

  dumpsTyped(data: unknown): Promise<[string, Uint8Array]> {
    return this.inner.dumpsTyped(data);
  }

  async loadsTyped(type: string, data: Uint8Array | string): Promise<unknown> {
    if (type === "null") return null;
    if (type === "bytearray") return typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (type === "msgpack") {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      const tree = decode(bytes, { extensionCodec: codec });
      // Revived by the wrapped serializer, so messages become LangChain.js classes as in its own "json".
      return this.inner.loadsTyped("json", JSON.stringify(tree, jsonReplacer));
    }
    return this.inner.loadsTyped(type, data);
  }
}

/**
 * The channel version after `current`, in LangGraph Python's form ("%032d.%016f" of a counter and a random
 * number), so both languages can compare the versions of a thread; a channel that already has a number (a
 * thread LangGraph.js wrote before) keeps counting in numbers.
 */
export function nextChannelVersion(current: string | number | undefined): string | number {
  if (typeof current === "number") return current + 1;
  const counter = current === undefined ? 0 : Number.parseInt(current.split(".")[0] ?? "0", 10);
  return `${String(counter + 1).padStart(32, "0")}.${pythonFloat16(Math.random())}`;
}

/** A float in [0, 1) as Python's f"{x:016}" prints it (repr, zero-padded to 16 characters). */
function pythonFloat16(x: number): string {
  return String(x).padStart(16, "0");
}
