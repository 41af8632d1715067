/**
 * A real LangGraph.js graph on CairnSaver: it stops at an interrupt (human approval), a new saver and a
 * freshly compiled graph (a restarted process) resume it through Cairn, and the checkpoints are
 * visible through the plain client. Runs with each of LangGraph's durability modes, and with a subgraph
 * (its checkpoints live in their own Cairn namespace).
 */
import { Annotation, Command, END, interrupt, MemorySaver, START, type StateSnapshot, StateGraph } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { CairnSaver } from "../src/langgraph.js";
import { newThread, sharedClient, sharedOptions, target } from "./helpers.js";

const client = sharedClient();

/** The interrupt values a paused invoke returned. */
const interrupts = (result: object): unknown[] =>
  ((result as { __interrupt__?: Array<{ value: unknown }> }).__interrupt__ ?? []).map((i) => i.value);

const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  approved: Annotation<boolean>(),
});

function buildGraph() {
  return new StateGraph(State)
    .addNode("draft", () => ({ log: ["draft"] }))
    .addNode("review", () => {
      const answer = interrupt({ question: "publish?" });
      return { approved: answer === "yes", log: [`review:${answer}`] };
    })
    .addNode("publish", (s: typeof State.State) => ({ log: [s.approved ? "published" : "dropped"] }))
    .addEdge(START, "draft")
    .addEdge("draft", "review")
    .addEdge("review", "publish")
    .addEdge("publish", END);
}

function buildParentGraph() {
  const sub = new StateGraph(State)
    .addNode("ask", () => ({ log: [`sub:${interrupt("ok?")}`] }))
    .addEdge(START, "ask")
    .addEdge("ask", END)
    .compile();
  return new StateGraph(State)
    .addNode("before", () => ({ log: ["before"] }))
    .addNode("sub", sub)
    .addNode("after", () => ({ log: ["after"] }))
    .addEdge(START, "before")
    .addEdge("before", "sub")
    .addEdge("sub", "after")
    .addEdge("after", END);
}

describe.each(["async", "sync", "exit"] as const)("durability %s", (durability) => {
  it("stops at an interrupt and resumes through Cairn after a restart", async () => {
    const threadId = newThread("graph");
    const config = { configurable: { thread_id: threadId }, durability };

    const saver1 = new CairnSaver(target(), sharedOptions());
    const first = await buildGraph().compile({ checkpointer: saver1 }).invoke({ log: ["start"] }, config);
    expect(interrupts(first)).toEqual([{ question: "publish?" }]);
    expect(first.log).toEqual(["start", "draft"]);
    saver1.close();

    // A new process: new saver, new graph, same thread.
    const saver2 = new CairnSaver(target(), sharedOptions());
    const graph2 = buildGraph().compile({ checkpointer: saver2 });
    const paused = await graph2.getState(config);
    expect(paused.next).toEqual(["review"]);
    expect(paused.tasks[0]?.interrupts[0]?.value).toEqual({ question: "publish?" });

    const done = await graph2.invoke(new Command({ resume: "yes" }), config);
    expect(done.log).toEqual(["start", "draft", "review:yes", "published"]);
    expect(done.approved).toBe(true);
    expect((await graph2.getState(config)).next).toEqual([]);

    // History through LangGraph and through the plain client agree.
    const history: StateSnapshot[] = [];
    for await (const snapshot of graph2.getStateHistory(config)) history.push(snapshot);
    // ... and match what LangGraph's in-memory saver records for the same run.
    const memory = new MemorySaver();
    const memGraph = buildGraph().compile({ checkpointer: memory });
    await memGraph.invoke({ log: ["start"] }, config);
    await memGraph.invoke(new Command({ resume: "yes" }), config);
    const memHistory: StateSnapshot[] = [];
    for await (const snapshot of memGraph.getStateHistory(config)) memHistory.push(snapshot);
    const summary = (h: StateSnapshot[]) =>
      h.map((s) => ({ values: s.values, next: s.next, step: s.metadata?.step, source: s.metadata?.source }));
    expect(summary(history)).toEqual(summary(memHistory));

    const { checkpoints } = await client.list({ threadId, namespace: "" });
    expect(checkpoints.map((c) => c.checkpointId)).toEqual(history.map((s) => s.config.configurable?.checkpoint_id));
    expect(checkpoints[0]?.stateType).toBe("json");
    expect(checkpoints[0]?.metadata).toMatchObject({ source: "loop" });
    if (durability !== "exit") expect(checkpoints.length).toBeGreaterThanOrEqual(5);
    saver2.close();
  });
});

it("resumes an interrupt inside a subgraph exactly as LangGraph's MemorySaver does; subgraph checkpoints get their own namespace", async () => {
  async function run(saver: BaseCheckpointSaver, resumeSaver: BaseCheckpointSaver, threadId: string) {
    const config = { configurable: { thread_id: threadId } };
    const first = await buildParentGraph().compile({ checkpointer: saver }).invoke({ log: [] }, config);
    const resumed = await buildParentGraph()
      .compile({ checkpointer: resumeSaver })
      .invoke(new Command({ resume: "fine" }), config);
    return { interrupts: interrupts(first), log: resumed.log };
  }
  const threadId = newThread("subgraph");
  const saver = new CairnSaver(target(), sharedOptions());
  const memory = new MemorySaver();
  const expected = await run(memory, memory, threadId);
  expect(expected.interrupts).toEqual(["ok?"]);
  // The subgraph returns its whole state, which the parent's reducer appends: "before" twice.
  expect(expected.log).toEqual(["before", "before", "sub:fine", "after"]);
  expect(await run(saver, new CairnSaver(saver.client), threadId)).toEqual(expected);

  const namespaces = new Set<string>();
  for await (const page of client.listPages({ threadId })) page.checkpoints.forEach((c) => namespaces.add(c.namespace));
  expect(namespaces.has("")).toBe(true);
  expect([...namespaces].some((ns) => ns.startsWith("sub:"))).toBe(true);
  saver.close();
});

it("keeps the interrupt as a pending write of the paused checkpoint", async () => {
  const threadId = newThread("writes");
  const saver = new CairnSaver(target(), sharedOptions());
  await buildGraph().compile({ checkpointer: saver }).invoke({ log: [] }, { configurable: { thread_id: threadId } });
  const tuple = await saver.getTuple({ configurable: { thread_id: threadId } });
  const interrupts = tuple?.pendingWrites?.filter(([, channel]) => channel === "__interrupt__") ?? [];
  expect(interrupts).toHaveLength(1);
  const { pendingWrites } = await client.load({ threadId });
  expect(pendingWrites.find((w) => w.channel === "__interrupt__")?.idx).toBe(-3); // WRITES_IDX_MAP[INTERRUPT]
  saver.close();
});
