/**
 * States on the wire as zstd (the client's `compressStates` option; client_py's `StateWire` in TypeScript).
 *
 * Saves: a state goes out as one zstd frame (level 1, no dictionary, content size declared in the frame header,
 * which the server requires) only after a SaveResponse received by this client listed STATE_ENCODING_ZSTD in
 * `acceptedStateEncodings`: an older server would store the frame as the state. States under 256 bytes, and
 * states whose frame would not be smaller, go as they are. Reads ask for zstd and take either answer; a zstd
 * answer is checked (its declared size must be `stateSizeBytes`), decompressed bounded by that size and handed
 * to the caller as the raw state, so callers never see a frame.
 *
 * zstd comes from @bokuweb/zstd-wasm (zstd compiled to WebAssembly, shipped inside its npm tarball: no install
 * script, no native build, works on Node 20 whose node:zlib has no zstd). It is imported on first use, so a
 * client without `compressStates` never loads it. Its simple API writes one frame with the content size
 * (ZSTD_compress) and decompresses into a buffer of the declared size (ZSTD_decompress). Per ~37 KB agent-like
 * JSON state (the tests' generator, warm, on the dev box): compress 0.24 ms, decompress 0.05 ms, frame 19% of
 * the state (@hpcc-js/wasm-zstd: 0.30 and 1.47 ms). Level 1 because the client pays for compression and the
 * server and the network gain from it: ~0.6x the CPU of level 3 for a frame a few percent larger. The wasm heap
 * keeps the size of the largest state it handled.
 */
import { Code, DataLossError } from "./errors.js";
import { type Checkpoint, type SaveRequest, type SaveResponse, StateEncoding } from "./gen/cairn/v1/checkpoint_store.js";

const ZSTD = StateEncoding.STATE_ENCODING_ZSTD;
const IDENTITY = StateEncoding.STATE_ENCODING_UNSPECIFIED;
const ZSTD_MAGIC = 0xfd2fb528; // little-endian: 28 b5 2f fd

type Zstd = typeof import("@bokuweb/zstd-wasm");
let loading: Promise<Zstd> | undefined;

/**
 * The zstd module, imported and its WebAssembly instantiated once per process. The module is a process-wide
 * singleton whose `init()` instantiates the wasm anew on every call, and a second instance breaks the first
 * one's users (tried: compress then fails with code -10), so a module the application already initialised is
 * reused as it is.
 */
function zstd(): Promise<Zstd> {
  loading ??= import("@bokuweb/zstd-wasm")
    .then(async (mod) => {
      if (!initialised(mod)) await mod.init();
      return mod;
    })
    .catch((err: unknown) => {
      loading = undefined; // let a later call try again
      throw err;
    });
  return loading;
}

function initialised(mod: Zstd): boolean {
  try {
    mod.compress(new Uint8Array(0), 1); // throws a TypeError until init() has instantiated the wasm
    return true;
  } catch {
    return false;
  }
}

/** What the header of a zstd frame declares (RFC 8878, 3.1.1.1). */
export interface ZstdFrameHeader {
  /** The decompressed size the frame declares; undefined when it declares none. */
  contentSize: number | undefined;
  /** The dictionary the frame names; 0 = none. */
  dictionaryId: number;
  /** Whether the frame ends with a content checksum. */
  checksum: boolean;
}

/** Parses the header of the zstd frame at the start of `frame`; throws an Error saying what is wrong. */
export function zstdFrameHeader(frame: Uint8Array): ZstdFrameHeader {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < 5 || view.getUint32(0, true) !== ZSTD_MAGIC) throw new Error("it is not a zstd frame");
  const descriptor = view.getUint8(4);
  if (descriptor & 0x08) throw new Error("its frame header sets the reserved bit");
  const singleSegment = (descriptor & 0x20) !== 0;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 0x03]!;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  let at = singleSegment ? 5 : 6; // a window descriptor byte unless single-segment
  if (frame.length < at + dictionaryBytes + sizeBytes) throw new Error("its frame header is truncated");
  const field = (bytes: number): number | undefined => {
    const start = at;
    at += bytes;
    if (bytes === 1) return view.getUint8(start);
    if (bytes === 2) return view.getUint16(start, true);
    if (bytes === 4) return view.getUint32(start, true);
    if (bytes === 8) return Number(view.getBigUint64(start, true));
    return undefined;
  };
  const dictionaryId = field(dictionaryBytes) ?? 0;
  const size = field(sizeBytes);
  const contentSize = sizeBytes === 2 ? size! + 256 : size; // the 2-byte form stores size - 256
  return { contentSize, dictionaryId, checksum: (descriptor & 0x04) !== 0 };
}

/** How one client sends and reads states; see the module comment. */
export class StateWire {
  /** Below this, compression costs more than it saves (the server's rule too). */
  static readonly MIN_BYTES = 256;
  /** What reads put in `acceptStateEncodings`. */
  readonly accept: StateEncoding[];
  /** Whether a SaveResponse of the server has listed zstd (saves are compressed from then on). */
  serverAccepts = false;

  /**
   * @param enabled the client's `compressStates`.
   * @param maxStateBytes the largest state a zstd answer may decompress to (the client's largest message: a
   *   state bigger than that could not be read uncompressed either).
   */
  constructor(
    readonly enabled: boolean,
    private readonly maxStateBytes: number,
    readonly level = 1,
  ) {
    this.accept = enabled ? [ZSTD] : [];
  }

  /** `req`, or a copy with its state compressed (the caller's objects are left as they were). */
  async outgoing(req: SaveRequest): Promise<SaveRequest> {
    const cp = req.checkpoint;
    if (!this.serverAccepts || !cp || cp.stateEncoding !== IDENTITY || cp.state.length < StateWire.MIN_BYTES) return req;
    const frame = (await zstd()).compress(cp.state, this.level);
    if (frame.length >= cp.state.length) return req;
    return { ...req, checkpoint: { ...cp, state: frame, stateEncoding: ZSTD } };
  }

  /** Notes whether the server accepts zstd, following the latest answer (a server that stops listing it, e.g.
   * after a rollback, stops getting frames); returns `res`. */
  saved(res: SaveResponse): SaveResponse {
    if (this.enabled) this.serverAccepts = res.acceptedStateEncodings.includes(ZSTD);
    return res;
  }

  /** A read request asking for zstd when enabled (a copy; `input` as it is when not). */
  reading<T extends { acceptStateEncodings?: StateEncoding[] }>(input: T): T {
    return this.enabled ? { ...input, acceptStateEncodings: [...this.accept] } : input;
  }

  /**
   * A returned checkpoint with its raw state (`c` itself when it came as is, or when compression is off);
   * a {@link DataLossError} (reason STATE_ENCODING) when the server's frame is not what it says.
   */
  async checkpoint(c: Checkpoint): Promise<Checkpoint> {
    if (!this.enabled || c.stateEncoding === IDENTITY) return c;
    const where = `checkpoint ${JSON.stringify(c.checkpointId)} of thread ${JSON.stringify(c.threadId)}`;
    if (c.stateEncoding !== ZSTD) {
      throw stateEncodingError(`${where}: the server sent state_encoding ${c.stateEncoding}, which this client did not ask for`);
    }
    const fail = (what: string) => stateEncodingError(`${where}: the zstd-encoded state does not decompress (${what})`);
    let header: ZstdFrameHeader;
    try {
      header = zstdFrameHeader(c.state);
    } catch (err) {
      throw fail((err as Error).message);
    }
    if (header.dictionaryId !== 0) throw fail(`the frame names dictionary ${header.dictionaryId}`);
    if (header.contentSize === undefined) throw fail("the frame does not declare its content size");
    if (header.contentSize !== c.stateSizeBytes) {
      throw fail(`the frame declares ${header.contentSize} bytes, state_size_bytes is ${c.stateSizeBytes}`);
    }
    if (header.contentSize > this.maxStateBytes) {
      throw fail(`the frame declares ${header.contentSize} bytes, over this client's maxMessageBytes ${this.maxStateBytes}`);
    }
    const codec = await zstd();
    let state: Uint8Array;
    try {
      state = codec.decompress(c.state); // sized by the declared content size, checked above
    } catch (err) {
      throw fail((err as Error).message);
    }
    if (state.length !== c.stateSizeBytes) throw fail(`it gave ${state.length} bytes, state_size_bytes is ${c.stateSizeBytes}`);
    // A Buffer, as the generated decoder gives identity states: the same type whatever the encoding on the wire.
    return { ...c, state: Buffer.from(state.buffer, state.byteOffset, state.length), stateEncoding: IDENTITY };
  }

  /** {@link checkpoint} for each. */
  checkpoints(cps: Checkpoint[]): Promise<Checkpoint[]> {
    return Promise.all(cps.map((c) => this.checkpoint(c)));
  }
}

function stateEncodingError(message: string): DataLossError {
  return new DataLossError({ code: Code.DATA_LOSS, message, reason: "STATE_ENCODING" });
}
