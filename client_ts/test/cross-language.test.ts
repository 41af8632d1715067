/**
 * CrossLanguageSerializer on what LangGraph Python's JsonPlusSerializer really writes (made by
 * tests/crosslang/langgraph_peer.py --values): the values both languages have come back as LangGraph.js
 * values, a Python object without a JavaScript counterpart fails with an error naming its type.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph-checkpoint";
import { CrossLanguageSerializer, NoJavaScriptCounterpartError, nextChannelVersion } from "../src/cross-language.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const serde = new CrossLanguageSerializer(new MemorySaver().serde);

const dumped = JSON.parse(
  execFileSync(process.env.CAIRN_PYTHON || "python3", [`${repo}tests/crosslang/langgraph_peer.py`, "--values"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }),
) as Record<string, [string, string]>;

const load = (name: string) => {
  const [type, b64] = dumped[name]!;
  return serde.loadsTyped(type, new Uint8Array(Buffer.from(b64, "base64")));
};

it("reads Python's msgpack of plain values", async () => {
  expect(await load("plain")).toEqual({ s: "x", i: 7, f: 1.5, b: true, n: null, l: [1, "two"] });
  expect(await load("tuple")).toEqual([1, 2]);
  expect(await load("none")).toBeNull();
  expect(await load("bytes")).toEqual(new Uint8Array([0, 1]));
});

it("reads Python's messages as LangChain.js messages", async () => {
  const [human, ai] = (await load("messages")) as [HumanMessage, AIMessage];
  expect(human).toBeInstanceOf(HumanMessage);
  expect(ai).toBeInstanceOf(AIMessage);
  expect([human.content, human.id, ai.content, ai.id]).toEqual(["hi", "h1", "yo", "a1"]);
});

it("maps Python's standard types to their JavaScript form", async () => {
  expect(await load("uuid")).toBe("12345678-1234-5678-1234-567812345678");
  expect(await load("datetime")).toBe("2026-01-02T03:04:05+00:00");
  expect(await load("set")).toEqual(new Set([3]));
  expect(await load("interrupt")).toMatchObject({ value: { question: "ok?" }, id: "i1" });
});

it("refuses a Python object without a JavaScript counterpart, naming its type", async () => {
  await expect(load("dataclass")).rejects.toThrow(NoJavaScriptCounterpartError);
  await expect(load("dataclass")).rejects.toThrow(/__main__\.Order has no JavaScript counterpart/);
});

it("makes channel versions in LangGraph Python's form, and keeps numbers counting", () => {
  const first = nextChannelVersion(undefined) as string;
  expect(first).toMatch(/^0{31}1\.0\.\d+$/);
  const second = nextChannelVersion(first) as string;
  expect(second.startsWith(`${"0".repeat(31)}2.`)).toBe(true);
  expect(second > first).toBe(true);
  expect(nextChannelVersion("00000000000000000000000000000009.0.5")).toMatch(/^0{30}10\./);
  expect(nextChannelVersion(4)).toBe(5);
});
