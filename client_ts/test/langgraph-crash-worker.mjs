/**
 * A real LangGraph.js process for test/langgraph-crash.test.ts, on CairnSaver or on LangGraph.js's own
 * MemorySaver (the reference; made to outlive the process by writing its storage to a file, synchronously,
 * after each of its calls returns, so it holds exactly what a durable store would at a kill).
 *
 *     node test/langgraph-crash-worker.mjs crash|resume SAVER WHERE THREAD DURABILITY LOG
 *
 * SAVER is "cairn" (WHERE: the target; CAIRN_SAVER_MODULE: the built saver module) or "memory" (WHERE: the
 * snapshot file). The graph is a -> b -> c -> d; each node appends its name to the state's log and, when it
 * finishes, a line to LOG. `crash` runs until it is inside c, prints "INSIDE c" once the saver calls have
 * settled (under "async", with the put of the checkpoint after b held in flight) and waits for SIGKILL.
 * `resume` prints what the thread holds, resumes (from the latest checkpoint, else with the input again) and
 * prints the result and the history as one JSON line. Same scenario as tests/langgraph_crash_worker.py.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { Annotation, END, MemorySaver, START, StateGraph } from "@langchain/langgraph";

const [phase, kind, where, threadId, durability, logFile] = process.argv.slice(2);
const INPUT = { log: ["input"] };
const config = { configurable: { thread_id: threadId }, durability };

const State = Annotation.Root({ log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }) });

/** Base64 for bytes, so MemorySaver's storage goes through JSON. */
const toJSON = (v) =>
  v instanceof Uint8Array ? { b64: Buffer.from(v).toString("base64") }
  : Array.isArray(v) ? v.map(toJSON)
  : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJSON(x)]))
  : v;
const fromJSON = (v) =>
  v && typeof v === "object" && !Array.isArray(v) && typeof v.b64 === "string" ? new Uint8Array(Buffer.from(v.b64, "base64"))
  : Array.isArray(v) ? v.map(fromJSON)
  : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJSON(x)]))
  : v;

async function openSaver() {
  if (kind === "cairn") {
    const { CairnSaver } = await import(process.env.CAIRN_SAVER_MODULE);
    return new CairnSaver(where, { token: process.env.CAIRN_TOKEN || undefined });
  }
  const saver = new MemorySaver();
  if (existsSync(where)) {
    const { storage, writes } = fromJSON(JSON.parse(readFileSync(where, "utf8")));
    Object.assign(saver.storage, storage);
    Object.assign(saver.writes, writes);
  }
  for (const name of ["put", "putWrites", "deleteThread"]) {
    const call = saver[name].bind(saver);
    saver[name] = async (...args) => {
      const out = await call(...args);
      writeFileSync(where, JSON.stringify(toJSON({ storage: saver.storage, writes: saver.writes })));
      return out;
    };
  }
  return saver;
}

/** Counts the saver calls in flight; holds the put of the checkpoint after b when asked to. */
function track(saver, holdPutAfterB) {
  const state = { inFlight: 0, holding: false, waiters: [] };
  const changed = () => state.waiters.splice(0).forEach((w) => w());
  for (const name of ["put", "putWrites"]) {
    const call = saver[name].bind(saver);
    saver[name] = async (...args) => {
      state.inFlight += 1;
      try {
        const log = name === "put" ? args[1].channel_values?.log ?? [] : [];
        if (holdPutAfterB && name === "put" && log.includes("b") && !log.includes("c")) {
          state.holding = true;
          changed();
          await new Promise(() => {}); // ends with the process
        }
        return await call(...args);
      } finally {
        state.inFlight -= 1;
        changed();
      }
    };
  }
  state.settle = async (inFlight, holding) => {
    const deadline = Date.now() + 60_000; // a hang guard only
    while (!(state.inFlight === inFlight && state.holding === holding)) {
      if (Date.now() > deadline) throw new Error(`saver calls did not settle: ${state.inFlight} in flight`);
      await new Promise((resolve) => {
        state.waiters.push(resolve);
        setTimeout(resolve, 1000).unref();
      });
    }
  };
  return state;
}

function build(saver, insideC) {
  const node = (name) => async () => {
    if (name === "c" && insideC) await insideC();
    appendFileSync(logFile, `${name}\n`);
    return { log: [name] };
  };
  return new StateGraph(State)
    .addNode("a", node("a"))
    .addNode("b", node("b"))
    .addNode("c", node("c"))
    .addNode("d", node("d"))
    .addEdge(START, "a")
    .addEdge("a", "b")
    .addEdge("b", "c")
    .addEdge("c", "d")
    .addEdge("d", END)
    .compile({ checkpointer: saver });
}

async function history(graph) {
  const out = [];
  for await (const s of graph.getStateHistory(config)) {
    out.unshift({ step: s.metadata?.step, source: s.metadata?.source, next: [...s.next], log: s.values?.log ?? null });
  }
  return out;
}

const saver = await openSaver();
if (phase === "crash") {
  const calls = track(saver, durability === "async");
  const insideC = async () => {
    await (durability === "async" ? calls.settle(1, true) : calls.settle(0, false));
    process.stdout.write("INSIDE c\n");
    await new Promise(() => setTimeout(() => {}, 60_000));
  };
  await build(saver, insideC).invoke(INPUT, config);
  process.exit(1);
} else {
  const graph = build(saver);
  const snap = await graph.getState(config);
  const afterCrash = { values: snap.values, next: [...snap.next], history: await history(graph) };
  const saved = (await saver.getTuple(config)) !== undefined;
  const result = await graph.invoke(saved ? null : INPUT, config);
  process.stdout.write(`${JSON.stringify({ after_crash: afterCrash, result, history: await history(graph) })}\n`);
  saver.close?.();
  process.exit(0);
}
