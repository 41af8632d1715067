/**
 * LangGraph across languages: one thread, on the same graph, continued in turn by LangGraph Python
 * (tests/crosslang/langgraph_peer.py, through the Python CairnSaver) and by LangGraph.js (through this
 * CairnSaver), in both orders, with Python writing its default "msgpack" or the shared "json"
 * (`cross_language=True`). Each turn adds a human message, an AI message with a tool call, the tool's
 * message and an answer that counts the messages it saw, so the whole list must have crossed. And a
 * human-in-the-loop graph stopped at an interrupt in one language is answered in the other.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AIMessage, type BaseMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { Annotation, Command, END, interrupt, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { CairnSaver } from "../src/langgraph.js";
import { newThread, sharedClient, sharedOptions, target } from "./helpers.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const client = sharedClient();

interface Plain {
  type: string;
  content: unknown;
  id: string | undefined;
  tool_calls?: Array<{ name: string; args: unknown; id: string | undefined }>;
  tool_call_id?: string;
}

/** The fields both languages compare (the Python peer prints the same). */
function plain(m: BaseMessage): Plain {
  const out: Plain = { type: m.getType(), content: m.content, id: m.id };
  if (m instanceof AIMessage) out.tool_calls = (m.tool_calls ?? []).map((c) => ({ name: c.name, args: c.args, id: c.id }));
  if (m instanceof ToolMessage) out.tool_call_id = m.tool_call_id;
  return out;
}

/** The TypeScript twin of the Python peer's graph. */
function buildGraph(saver: CairnSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", (s: typeof MessagesAnnotation.State) => {
      const question = s.messages[s.messages.length - 1]?.content;
      const call = { name: "lookup", args: { q: question }, id: `call-${s.messages.length}`, type: "tool_call" as const };
      return { messages: [new AIMessage({ content: "", tool_calls: [call] })] };
    })
    .addNode("tool", (s: typeof MessagesAnnotation.State) => {
      const call = (s.messages[s.messages.length - 1] as AIMessage).tool_calls![0]!;
      return { messages: [new ToolMessage({ content: `js tool: ${call.args.q}`, tool_call_id: call.id! })] };
    })
    .addNode("answer", (s: typeof MessagesAnnotation.State) => ({
      messages: [new AIMessage(`js saw ${s.messages.length} messages`)],
    }))
    .addEdge(START, "agent")
    .addEdge("agent", "tool")
    .addEdge("tool", "answer")
    .addEdge("answer", END)
    .compile({ checkpointer: saver });
}

async function jsTurn(threadId: string, say: string): Promise<Plain[]> {
  const saver = new CairnSaver(target(), sharedOptions());
  try {
    const out = await buildGraph(saver).invoke({ messages: [new HumanMessage(say)] }, { configurable: { thread_id: threadId } });
    return out.messages.map(plain);
  } finally {
    saver.close();
  }
}

function pyTurn(threadId: string, say: string, crossLanguage: boolean): Plain[] {
  const args = [`${repo}tests/crosslang/langgraph_peer.py`, "--target", target(), "--thread", threadId, "--say", say];
  if (crossLanguage) args.push("--cross-language");
  const out = execFileSync(process.env.CAIRN_PYTHON || "python3", args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return (JSON.parse(out.trim()) as { messages: Plain[] }).messages;
}

/** One turn's four messages, as the graph of `lang` makes them after `before` messages. */
function expectTurn(messages: Plain[], before: number, lang: "python" | "js", say: string): void {
  const turn = messages.slice(before);
  expect(turn.map((m) => m.type)).toEqual(["human", "ai", "tool", "ai"]);
  expect(turn[0]!.content).toBe(say);
  expect(turn[1]!.tool_calls).toEqual([{ name: "lookup", args: { q: say }, id: `call-${before + 1}` }]);
  expect(turn[2]).toMatchObject({ content: `${lang} tool: ${say}`, tool_call_id: `call-${before + 1}` });
  expect(turn[3]!.content).toBe(`${lang} saw ${before + 3} messages`);
  for (const m of turn) expect(m.id).toBeTruthy();
}

/** The state_type of every stored checkpoint of the thread. */
async function stateTypes(threadId: string): Promise<Set<string>> {
  const types = new Set<string>();
  for await (const page of client.listPages({ threadId })) for (const cp of page.checkpoints) types.add(cp.stateType);
  return types;
}

describe.each([
  ["msgpack", false],
  ["json (cross_language=True)", true],
] as const)("Python writing %s", (_encoding, crossLanguage) => {
  it("a thread started by LangGraph Python continues in LangGraph.js, then in Python again", async () => {
    const threadId = newThread("xlang-lg-py");
    const py1 = pyTurn(threadId, "hello from python", crossLanguage);
    expect(py1).toHaveLength(4);
    expectTurn(py1, 0, "python", "hello from python");
    expect(await stateTypes(threadId)).toEqual(new Set([crossLanguage ? "json" : "msgpack"]));

    const js = await jsTurn(threadId, "and from js");
    expect(js).toHaveLength(8);
    expect(js.slice(0, 4)).toEqual(py1);
    expectTurn(js, 4, "js", "and from js");

    const py2 = pyTurn(threadId, "python again", crossLanguage);
    expect(py2).toHaveLength(12);
    expect(py2.slice(0, 8)).toEqual(js);
    expectTurn(py2, 8, "python", "python again");
  });

  it("a thread started by LangGraph.js continues in LangGraph Python, then in LangGraph.js again", async () => {
    const threadId = newThread("xlang-lg-js");
    const js1 = await jsTurn(threadId, "hello from js");
    expectTurn(js1, 0, "js", "hello from js");
    expect(await stateTypes(threadId)).toEqual(new Set(["json"]));

    const py = pyTurn(threadId, "and from python", crossLanguage);
    expect(py).toHaveLength(8);
    expect(py.slice(0, 4)).toEqual(js1);
    expectTurn(py, 4, "python", "and from python");

    const js2 = await jsTurn(threadId, "js again");
    expect(js2).toHaveLength(12);
    expect(js2.slice(0, 8)).toEqual(py);
    expectTurn(js2, 8, "js", "js again");
  });
});

const Approval = Annotation.Root({ log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }) });

/** The TypeScript twin of the Python peer's approval graph. */
function approvalGraph(saver: CairnSaver) {
  return new StateGraph(Approval)
    .addNode("draft", () => ({ log: ["draft"] }))
    .addNode("ask", () => ({ log: [`answer: ${interrupt({ question: "publish?" })}`] }))
    .addNode("done", () => ({ log: ["done"] }))
    .addEdge(START, "draft")
    .addEdge("draft", "ask")
    .addEdge("ask", "done")
    .addEdge("done", END)
    .compile({ checkpointer: saver });
}

async function jsApproval(threadId: string, step: "start" | "resume") {
  const saver = new CairnSaver(target(), sharedOptions());
  try {
    const graph = approvalGraph(saver);
    const config = { configurable: { thread_id: threadId } };
    const result =
      step === "start"
        ? await graph.invoke({ log: ["start"] }, config)
        : await graph.invoke(new Command({ resume: "yes from js" }), config);
    const out = result as {
      log: string[];
      __interrupt__?: Array<{ value: unknown }>;
    };
    return { log: out.log, interrupts: (out.__interrupt__ ?? []).map((i) => i.value) };
  } finally {
    saver.close();
  }
}

function pyApproval(threadId: string, step: "start" | "resume", crossLanguage: boolean) {
  const args = [`${repo}tests/crosslang/langgraph_peer.py`, "--target", target(), "--thread", threadId, "--approval", step];
  if (crossLanguage) args.push("--cross-language");
  const out = execFileSync(process.env.CAIRN_PYTHON || "python3", args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out.trim()) as { log: string[]; interrupts: unknown[] };
}

describe.each([false, true])("an interrupt across languages (Python cross_language=%s)", (crossLanguage) => {
  it("stopped by LangGraph Python, answered in LangGraph.js", async () => {
    const threadId = newThread("xlang-hitl-py");
    expect(pyApproval(threadId, "start", crossLanguage)).toEqual({
      log: ["start", "draft"],
      interrupts: [{ question: "publish?" }],
    });
    expect(await jsApproval(threadId, "resume")).toEqual({
      log: ["start", "draft", "answer: yes from js", "done"],
      interrupts: [],
    });
  });

  it("stopped by LangGraph.js, answered in LangGraph Python", async () => {
    const threadId = newThread("xlang-hitl-js");
    expect(await jsApproval(threadId, "start")).toEqual({ log: ["start", "draft"], interrupts: [{ question: "publish?" }] });
    expect(pyApproval(threadId, "resume", crossLanguage)).toEqual({
      log: ["start", "draft", "answer: yes from python", "done"],
      interrupts: [],
    });
  });
});
