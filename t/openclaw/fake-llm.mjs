// A fake OpenAI-compatible model endpoint for the OpenClaw harness: the
// gateway's agent runs need a model turn, and the machine has no model and
// no key. Listens on a loopback address only.
//
//   node fake-llm.mjs [--listen 127.0.0.1:18800] [--delay 250] [--chunks 6]
//                     [--log FILE] [--pid-file FILE]
//
// POST /v1/chat/completions  streamed (stream: true) as SSE, one chunk every
//                            --delay ms, "data: [DONE]" last; or one JSON
//                            answer. The reply names the last user message,
//                            so a test can see its prompt went through.
// GET  /v1/models            the one model, "fake-model"
//
// Each request is logged as one JSON line (method, path, whether an
// Authorization header came, stream, message count) to --log or stderr.

import http from "node:http";
import fs from "node:fs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};

const listen = opt("listen", "127.0.0.1:18800");
const delay = Number(opt("delay", "250"));
const chunks = Number(opt("chunks", "6"));
const logFile = opt("log");
const pidFile = opt("pid-file");

const idx = listen.lastIndexOf(":");
const host = listen.slice(0, idx).replace(/^\[|\]$/g, "");
const port = Number(listen.slice(idx + 1));

if (!/^(127\.|::1$|localhost$)/.test(host)) {
  console.error(`fake-llm: refusing to listen on ${host}: loopback only`);
  process.exit(2);
}

const log = (o) => {
  const line = JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n";
  if (logFile) fs.appendFileSync(logFile, line);
  else process.stderr.write(line);
};

const MODEL = "fake-model";

// the user's words: user messages without the gateway's internal context
function lastUserText(messages) {
  const texts = [];
  for (const m of messages ?? []) {
    if (m?.role !== "user") continue;
    const text = typeof m.content === "string" ? m.content
      : Array.isArray(m.content) ? m.content.map((p) => (typeof p?.text === "string" ? p.text : "")).join("") : "";
    const own = text.replace(/<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g, "").trim();
    if (own) texts.push(own);
  }
  return texts.at(-1) ?? "";
}

function words(prompt) {
  const said = prompt.replace(/\s+/g, " ").trim().slice(0, 60);
  const text = `fake-llm reply to: ${said}`;
  const parts = [];
  const size = Math.max(1, Math.ceil(text.length / chunks));
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts;
}

const server = http.createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const path = new URL(req.url, "http://x").pathname.replace(/^\/v1/, "");
    let json = {};
    try {
      json = body ? JSON.parse(body) : {};
    } catch {
      /* logged below */
    }
    log({
      method: req.method,
      path: req.url,
      authorization: Boolean(req.headers.authorization),
      stream: json.stream === true,
      messages: Array.isArray(json.messages) ? json.messages.length : 0,
      tools: Array.isArray(json.tools) ? json.tools.length : 0,
      prompt: lastUserText(json.messages).slice(0, 200),
    });

    if (req.method === "GET" && path === "/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "fake" }] }));
      return;
    }

    if (req.method !== "POST" || path !== "/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
      return;
    }

    const id = `chatcmpl-fake-${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const parts = words(lastUserText(json.messages));
    const usage = { prompt_tokens: 10, completion_tokens: parts.length, total_tokens: 10 + parts.length };

    if (json.stream !== true) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({
        id, object: "chat.completion", created, model: json.model ?? MODEL,
        choices: [{ index: 0, message: { role: "assistant", content: parts.join("") }, finish_reason: "stop" }],
        usage,
      }));
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const chunk = (delta, finish = null, extra = {}) =>
      res.write(`data: ${JSON.stringify({
        id, object: "chat.completion.chunk", created, model: json.model ?? MODEL,
        choices: [{ index: 0, delta, finish_reason: finish }], ...extra,
      })}\n\n`);

    chunk({ role: "assistant", content: "" });
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      if (i < parts.length) {
        chunk({ content: parts[i++] });
        return;
      }
      clearInterval(timer);
      chunk({}, "stop", json.stream_options?.include_usage ? { usage } : {});
      res.end("data: [DONE]\n\n");
    }, delay);
    res.on("close", () => clearInterval(timer));
  });
});

server.listen(port, host, () => {
  if (pidFile) fs.writeFileSync(pidFile, `${process.pid}\n`);
  log({ listening: `${host}:${server.address().port}`, delay, chunks });
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
