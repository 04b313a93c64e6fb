// Scripted client of an OpenClaw gateway, directly or through the edge
// (nginx + ngx_claw_module). Runs on Node 24 (build/openclaw/node) and uses
// the ws package installed with openclaw (t/openclaw/install).
//
//   client.mjs connect URL [options]   WebSocket connect handshake as the
//                                      tenant's operator (Control UI client)
//   client.mjs ui URL [options]        the Control UI page and every asset
//                                      it references (static import graph)
//   client.mjs api URL [options]       one HTTP API call
//   client.mjs sse URL [options]       a streamed answer, chunk by chunk
//                                      with timestamps
//   client.mjs browser URL [options]   a real cold load in headless
//                                      Chromium: every request it makes
//
// Credentials (for the edge; the gateway itself takes none):
//   --bearer TOKEN     Authorization: Bearer TOKEN
//   --cookie VALUE     Cookie: __Host-claw=VALUE (or VALUE if it has "=")
//   --token TOKEN      claw_token=TOKEN in the URL's query (the module's
//                      WebSocket credential and browser login link)
// Connection:
//   --resolve HOST:ADDR   connect to ADDR for HOST (like curl --resolve)
//   --local-address ADDR  bind the client socket to ADDR
//   --cacert FILE | -k    trust FILE / do not verify TLS certificates
//   --header "K: V"       an extra request header (repeatable)
//   --origin URL | --no-origin   Origin header (default: the URL's origin
//                      for connect and browser-like requests)
//   --timeout MS       give up after MS (default 30000)
// connect:
//   --device           sign the connect with an ephemeral Ed25519 device
//                      identity (as browsers do); default device-less
//   --device-file F    keep that identity in F (reused if present)
//   --scopes a,b       requested scopes (default operator.read,operator.write)
//   --client ID:MODE   client id and mode (default openclaw-control-ui:ui)
//   --build-id ID      client.buildId (default: retry once with the id the
//                      gateway names in a build-mismatch error)
//   --call METHOD      one RPC after hello-ok (e.g. health, status)
//   --params JSON      its params
//   --hold MS          after hello-ok, keep the socket open up to MS and
//                      wait for the server to close it (a revoked
//                      credential): exit 0 and print closedAt (epoch ms)
//                      when it did, 1 when it was still open
//   --ready FILE       with --hold: write FILE once hello-ok came
// ui:
//   --dynamic          also follow import("...") (lazy routes)
//   --concurrency N    parallel fetches (default 6, a browser's per host)
//   -v                 list every asset
// api / sse:
//   --method M         default GET for api (POST with --data), POST for sse
//   --data JSON|@FILE  request body (sse default: a streamed chat
//                      completion of model "openclaw")
//   --expect STATUS    exit 0 only if the status is STATUS (default 2xx)
//   --min-spread MS    sse: exit 1 unless the data events arrive spread
//                      over at least MS (default 500): proof of no buffering
// browser:
//   --chromium PATH    default chromium-headless-shell, then chromium
//   --idle MS          network idle time that ends the load (default 3000)
//   --allow-fail RE    requests whose path matches RE may fail (e.g. the
//                      avatar route, which fetches Gravatar)
//
// Exit: 0 success; 1 refused (HTTP status, handshake error, close);
// 2 usage; 3 network or other error.

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import crypto from "node:crypto";
import { spawn } from "node:child_process";

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.OPENCLAW_BUILD ?? path.resolve(here, "../../build/openclaw");
const require = createRequire(path.join(buildDir, "app", "package.json"));
let WebSocket;
try {
  WebSocket = require("ws");
} catch {
  console.error(`client.mjs: no ws in ${buildDir}/app: run t/openclaw/install`);
  process.exit(3);
}

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const cmd = argv.shift();
const flags = new Set(["-k", "--insecure", "--device", "--dynamic", "-v", "--no-origin", "--json"]);
const opts = { header: [], resolve: [] };
const positional = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (flags.has(a)) opts[a.replace(/^-+/, "")] = true;
  else if (a.startsWith("--")) {
    const k = a.slice(2);
    const v = argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    if (Array.isArray(opts[k])) opts[k].push(v);
    else opts[k] = v;
  } else positional.push(a);
}
const target = positional[0];
if (!cmd || !target) usage();
const insecure = Boolean(opts.k || opts.insecure);
const timeoutMs = Number(opts.timeout ?? 30000);

function usage(msg) {
  if (msg) console.error(`client.mjs: ${msg}`);
  const text = fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
  const end = text.findIndex((l) => l.startsWith("import "));
  console.error(text.slice(0, end).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  process.exit(2);
}

const t0 = performance.now();
const ms = () => (performance.now() - t0).toFixed(0).padStart(6);

// ---------------------------------------------------------------- helpers

const resolveMap = new Map(opts.resolve.map((r) => {
  const i = r.lastIndexOf(":");
  return [r.slice(0, i).toLowerCase(), r.slice(i + 1).replace(/^\[|\]$/g, "")];
}));

function lookup(hostname, options, cb) {
  const addr = resolveMap.get(hostname.toLowerCase());
  if (!addr) return dns.lookup(hostname, options, cb);
  const family = addr.includes(":") ? 6 : 4;
  if (options?.all) cb(null, [{ address: addr, family }]);
  else cb(null, addr, family);
}

function tlsOptions() {
  const o = {};
  if (insecure) o.rejectUnauthorized = false;
  if (opts.cacert) o.ca = fs.readFileSync(opts.cacert);
  return o;
}

function withToken(u) {
  const url = new URL(u);
  if (opts.token) url.searchParams.set("claw_token", opts.token);
  return url;
}

function credentialHeaders() {
  const h = {};
  if (opts.bearer) h.authorization = `Bearer ${opts.bearer}`;
  if (opts.cookie) h.cookie = opts.cookie.includes("=") ? opts.cookie : `__Host-claw=${opts.cookie}`;
  for (const line of opts.header) {
    const i = line.indexOf(":");
    if (i <= 0) usage(`bad --header "${line}"`);
    h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

function originOf(url) {
  const u = new URL(url);
  const scheme = u.protocol === "wss:" || u.protocol === "https:" ? "https:" : "http:";
  const defPort = scheme === "https:" ? "443" : "80";
  return `${scheme}//${u.hostname}${u.port && u.port !== defPort ? `:${u.port}` : ""}`;
}

function originHeader(url) {
  if (opts["no-origin"]) return {};
  return { origin: opts.origin ?? originOf(url) };
}

const redact = (u) => String(u).replace(/(claw_token=)[^&]+/, "$1[redacted]");

// one HTTP request; onData(chunk, msSinceStart) streams the body
function request(u, { method = "GET", headers = {}, body, onData } = {}) {
  const url = typeof u === "string" ? new URL(u) : u;
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = mod.request(url, {
      method, headers, lookup, agent: false,
      localAddress: opts["local-address"],
      ...(url.protocol === "https:" ? { ...tlsOptions(), servername: url.hostname } : {}),
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => {
        chunks.push(c);
        onData?.(c, performance.now() - started);
      });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function readData() {
  if (opts.data === undefined) return undefined;
  return opts.data.startsWith("@") ? fs.readFileSync(opts.data.slice(1)) : Buffer.from(opts.data);
}

function statusOk(status) {
  return opts.expect ? String(status) === String(opts.expect) : status >= 200 && status < 300;
}

// ---------------------------------------------------------------- connect

function deviceIdentity() {
  const file = opts["device-file"];
  if (file && fs.existsSync(file)) {
    const s = JSON.parse(fs.readFileSync(file, "utf8"));
    return { privateKey: crypto.createPrivateKey(s.privateKeyPem), raw: Buffer.from(s.publicKey, "base64url") };
  }
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  if (file) fs.writeFileSync(file, JSON.stringify({
    publicKey: raw.toString("base64url"),
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }),
  }), { mode: 0o600 });
  return { privateKey, raw };
}

function connectOnce(buildId) {
  return new Promise((resolve) => {
    const wsUrl = withToken(target.replace(/^http/, "ws"));
    const [clientId, clientMode] = (opts.client ?? "openclaw-control-ui:ui").split(":");
    const scopes = (opts.scopes ?? "operator.read,operator.write").split(",").filter(Boolean);
    const headers = { ...credentialHeaders() };
    const origin = originHeader(wsUrl).origin;
    const ws = new WebSocket(wsUrl, {
      headers, origin, lookup, localAddress: opts["local-address"], ...tlsOptions(),
      handshakeTimeout: timeoutMs,
    });
    const out = { url: redact(wsUrl), frames: [] };
    const done = (code, extra) => {
      clearTimeout(timer);
      try { ws.terminate(); } catch { /* closed */ }
      resolve({ code, ...out, ...extra });
    };
    const timer = setTimeout(() => done(3, { error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    let helloSeen = false;

    ws.on("unexpected-response", (_req, res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => done(1, { upgrade: res.statusCode, body: b.slice(0, 500), wwwAuthenticate: res.headers["www-authenticate"] }));
    });
    ws.on("error", (e) => done(3, { error: e.message }));
    ws.on("close", (code, reason) => done(helloSeen ? 0 : 1, { close: code, reason: reason.toString() }));
    ws.on("message", (data) => {
      let m;
      try { m = JSON.parse(data.toString()); } catch { return; }
      out.frames.push(m.type === "event" ? `event ${m.event}` : `${m.type} ${m.id ?? ""} ${m.ok ?? ""}`.trim());
      if (m.type === "event" && m.event === "connect.challenge") {
        const { nonce, ts } = m.payload ?? {};
        const client = { id: clientId, version: "2026.9.6", platform: "linux", mode: clientMode };
        if (buildId) client.buildId = buildId;
        const params = { minProtocol: 4, maxProtocol: 4, client, role: "operator", scopes, caps: [],
          userAgent: "ngx_claw_module t/openclaw/client.mjs", locale: "en-US" };
        if (opts.device) {
          const { privateKey, raw } = deviceIdentity();
          const id = crypto.createHash("sha256").update(raw).digest("hex");
          // v3 device-auth payload (packages/gateway-client/src/device-auth.ts)
          const payload = ["v3", id, clientId, clientMode, "operator", scopes.join(","), String(ts), "", nonce, "linux", ""].join("|");
          params.device = {
            id, publicKey: raw.toString("base64url"), nonce, signedAt: ts,
            signature: crypto.sign(null, Buffer.from(payload, "utf8"), privateKey).toString("base64url"),
          };
        }
        ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params }));
        return;
      }
      if (m.type === "res" && m.id === "connect-1") {
        if (!m.ok) return done(1, { error: m.error });
        helloSeen = true;
        const p = m.payload;
        out.hello = {
          type: p.type, protocol: p.protocol, server: { version: p.server?.version, buildId: p.server?.buildId },
          auth: { method: p.auth?.method, role: p.auth?.role, scopes: p.auth?.scopes, deviceToken: p.auth?.deviceToken ? "[issued]" : undefined },
          policy: { maxPayload: p.policy?.maxPayload, tickIntervalMs: p.policy?.tickIntervalMs },
          methods: p.features?.methods?.length, controlUiUrl: p.controlUiUrl,
          authMode: p.snapshot?.authMode,
        };
        if (opts.hold) {
          clearTimeout(timer);
          ws.removeAllListeners("close");
          ws.on("close", (code) => done(0, { closedByServer: true, close: code, closedAt: Date.now() }));
          setTimeout(() => done(1, { stillOpen: true }), Number(opts.hold));
          if (opts.ready) fs.writeFileSync(opts.ready, "hello-ok\n");
          return;
        }
        if (!opts.call) return done(0);
        ws.send(JSON.stringify({ type: "req", id: "call-1", method: opts.call, params: opts.params ? JSON.parse(opts.params) : {} }));
        return;
      }
      if (m.type === "res" && m.id === "call-1") {
        out.call = { method: opts.call, ok: m.ok, ...(m.ok ? { payload: JSON.stringify(m.payload).slice(0, 300) } : { error: m.error }) };
        return done(m.ok ? 0 : 1);
      }
    });
  });
}

async function cmdConnect() {
  let r = await connectOnce(opts["build-id"]);
  const d = r.error?.details;
  if (r.code === 1 && !opts["build-id"] && d?.reloadRequired && d?.gatewayBuildId) {
    console.log(`# build mismatch: retrying with client.buildId ${d.gatewayBuildId}`);
    r = await connectOnce(d.gatewayBuildId);
  }
  console.log(JSON.stringify(r, null, 2));
  return r.code;
}

// ---------------------------------------------------------------- ui

function refsOf(kind, text, dynamic) {
  const refs = [];
  if (kind === "html") {
    for (const m of text.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["'][^>]*>/gi)) refs.push(m[1]);
  } else if (kind === "js") {
    for (const m of text.matchAll(/(?:\bimport|\bexport)\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"']+\.(?:m?js|css))["']/g)) refs.push(m[1]);
    if (dynamic) for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) refs.push(m[1]);
  } else if (kind === "css") {
    for (const m of text.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) if (!m[1].startsWith("data:")) refs.push(m[1]);
    for (const m of text.matchAll(/@import\s+["']([^"']+)["']/g)) refs.push(m[1]);
  }
  return refs;
}

function kindOf(u, type) {
  if (/text\/html/.test(type ?? "")) return "html";
  if (/\.m?js$/.test(u.pathname) || /javascript/.test(type ?? "")) return "js";
  if (/\.css$/.test(u.pathname) || /text\/css/.test(type ?? "")) return "css";
  return "other";
}

async function cmdUi() {
  const start = withToken(target);
  const origin = new URL(target).origin;
  const headers = { ...credentialHeaders(), "accept-encoding": "identity" };
  const seen = new Map();
  const queue = [{ url: start, from: null }];
  seen.set(start.href, null);
  const results = [];
  let total = 0;
  const concurrency = Number(opts.concurrency ?? 6);

  async function fetchOne({ url }) {
    const isPage = url.href === start.href;
    const res = await request(url, { headers: isPage ? { ...headers, accept: "text/html" } : headers });
    total += res.body.length;
    const ct = res.headers["content-type"];
    results.push({ path: redact(url.pathname + url.search), status: res.status, bytes: res.body.length, type: ct?.split(";")[0] });
    const kind = kindOf(url, ct);
    if (res.status !== 200 || kind === "other") return;
    for (const ref of refsOf(kind, res.body.toString("utf8"), Boolean(opts.dynamic))) {
      let next;
      try { next = new URL(ref, url); } catch { continue; }
      if (next.origin !== origin || seen.has(next.href)) continue;
      seen.set(next.href, url.href);
      queue.push({ url: next });
    }
  }

  const running = new Set();
  while (queue.length || running.size) {
    while (queue.length && running.size < concurrency) {
      const p = fetchOne(queue.shift()).catch((e) => results.push({ path: "?", status: 0, error: e.message }));
      running.add(p);
      p.finally(() => running.delete(p));
    }
    if (running.size) await Promise.race(running);
  }

  const byStatus = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  if (opts.v) for (const r of results) console.log(`${r.status} ${String(r.bytes ?? "").padStart(8)} ${r.type ?? ""} ${r.path}${r.error ? ` ${r.error}` : ""}`);
  const failed = results.filter((r) => !(r.status >= 200 && r.status < 400));
  console.log(JSON.stringify({ page: redact(start), requests: results.length, bytes: total, statuses: byStatus,
    failed: failed.slice(0, 10), ms: Math.round(performance.now() - t0) }, null, 2));
  return failed.length === 0 ? 0 : 1;
}

// ---------------------------------------------------------------- api, sse

async function cmdApi() {
  const body = readData();
  const method = opts.method ?? (body ? "POST" : "GET");
  const headers = { ...credentialHeaders(), ...(body ? { "content-type": "application/json" } : {}) };
  const res = await request(withToken(target), { method, headers, body });
  const keep = ["content-type", "content-length", "www-authenticate", "retry-after", "connection", "keep-alive", "set-cookie"];
  console.log(`${res.status} ${method} ${redact(withToken(target))}`);
  for (const k of keep) if (res.headers[k]) console.log(`${k}: ${res.headers[k]}`);
  console.log(res.body.toString("utf8").slice(0, Number(opts.max ?? 2000)));
  return statusOk(res.status) ? 0 : 1;
}

async function cmdSse() {
  const body = readData() ?? Buffer.from(JSON.stringify({
    model: "openclaw", stream: true, messages: [{ role: "user", content: "Say hello through the edge." }],
  }));
  const method = opts.method ?? "POST";
  const headers = { ...credentialHeaders(), accept: "text/event-stream", "content-type": "application/json" };
  const events = [];
  let buf = "";
  const res = await request(withToken(target), {
    method, headers, body,
    onData: (c, at) => {
      buf += c.toString("utf8");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = ev.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        events.push(at);
        let show = data;
        try {
          const j = JSON.parse(data);
          const d = j.choices?.[0]?.delta;
          show = d ? JSON.stringify(d) : (j.type ?? data);
        } catch { /* [DONE] and others */ }
        console.log(`${at.toFixed(0).padStart(6)} ms  ${show.slice(0, 120)}`);
      }
    },
  });
  const spread = events.length > 1 ? events[events.length - 1] - events[0] : 0;
  const gaps = events.slice(1).map((t, i) => t - events[i]);
  const summary = { status: res.status, contentType: res.headers["content-type"], events: events.length,
    firstMs: Math.round(events[0] ?? -1), lastMs: Math.round(events.at(-1) ?? -1), spreadMs: Math.round(spread),
    distinctArrivals: new Set(events.map((t) => Math.round(t / 50))).size, maxGapMs: Math.round(Math.max(0, ...gaps)) };
  if (res.status !== 200) console.log(res.body.toString("utf8").slice(0, 500));
  console.log(JSON.stringify(summary));
  const minSpread = Number(opts["min-spread"] ?? 500);
  return res.status === 200 && events.length >= 2 && spread >= minSpread ? 0 : 1;
}

// ---------------------------------------------------------------- browser

function findChromium() {
  if (opts.chromium) return opts.chromium;
  for (const c of ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]) if (fs.existsSync(c)) return c;
  console.error("client.mjs: no chromium (apt-get install chromium-headless-shell)");
  process.exit(3);
}

async function cmdBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "claw-chromium-"));
  const rules = [...resolveMap].map(([h, a]) => `MAP ${h} ${a.includes(":") ? `[${a}]` : a}`).join(",");
  const args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-features=MediaRouter,OptimizationHints,Translate", `--user-data-dir=${profile}`,
    "--remote-debugging-pipe", ...(rules ? [`--host-resolver-rules=${rules}`] : []),
    ...(insecure ? ["--ignore-certificate-errors"] : []), "about:blank"];
  // the DevTools protocol over a pipe (fds 3 and 4): no debugging port
  const chrome = spawn(findChromium(), args, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  chrome.stdio[2].on("data", (d) => (stderr += d));
  const toChrome = chrome.stdio[3];
  const fromChrome = chrome.stdio[4];
  let nextId = 1;
  const pending = new Map();
  const listeners = [];
  let inbuf = Buffer.alloc(0);
  fromChrome.on("data", (d) => {
    inbuf = Buffer.concat([inbuf, d]);
    let i;
    while ((i = inbuf.indexOf(0)) >= 0) {
      const msg = JSON.parse(inbuf.subarray(0, i).toString("utf8"));
      inbuf = inbuf.subarray(i + 1);
      if (msg.id && pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) reject(new Error(`${msg.error.message}`));
        else resolve(msg.result);
      } else for (const l of listeners) l(msg);
    }
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    toChrome.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
  });

  const reqs = new Map();
  const order = [];
  const sockets = new Map();
  let loadAt = null;
  let lastActivity = performance.now();
  listeners.push((m) => {
    const p = m.params ?? {};
    if (m.method?.startsWith("Network.")) lastActivity = performance.now();
    switch (m.method) {
      case "Network.requestWillBeSent": {
        if (p.request.url.startsWith("data:")) break;
        let r = reqs.get(p.requestId);
        if (r && p.redirectResponse) { r.status = p.redirectResponse.status; r = null; }
        const entry = { url: p.request.url, method: p.request.method, type: p.type, at: performance.now() - t0,
          afterLoad: loadAt !== null, authorization: Boolean(p.request.headers.Authorization ?? p.request.headers.authorization) };
        reqs.set(p.requestId, entry);
        order.push(entry);
        break;
      }
      case "Network.requestWillBeSentExtraInfo": {
        const r = reqs.get(p.requestId);
        if (!r) break;
        const h = Object.fromEntries(Object.entries(p.headers).map(([k, v]) => [k.toLowerCase(), v]));
        r.authorization = r.authorization || Boolean(h.authorization);
        r.cookie = /__Host-claw=/.test(h.cookie ?? "");
        break;
      }
      case "Network.responseReceived": {
        const r = reqs.get(p.requestId);
        if (r) { r.status = p.response.status; r.fromCache = p.response.fromDiskCache || p.response.fromServiceWorker; r.protocol = p.response.protocol; }
        break;
      }
      case "Network.loadingFailed": {
        const r = reqs.get(p.requestId);
        if (r) r.failed = p.errorText;
        break;
      }
      case "Network.webSocketCreated": sockets.set(p.requestId, { url: redact(p.url), frames: [] }); break;
      case "Network.webSocketWillSendHandshakeRequest": {
        const s = sockets.get(p.requestId);
        if (s) { const h = Object.fromEntries(Object.entries(p.request.headers).map(([k, v]) => [k.toLowerCase(), v]));
          s.origin = h.origin; s.cookie = /__Host-claw=/.test(h.cookie ?? ""); s.authorization = Boolean(h.authorization); }
        break;
      }
      case "Network.webSocketHandshakeResponseReceived": { const s = sockets.get(p.requestId); if (s) s.status = p.response.status; break; }
      case "Network.webSocketFrameSent":
      case "Network.webSocketFrameReceived": {
        const s = sockets.get(p.requestId);
        if (!s || s.frames.length >= 8) break;
        let f = p.response.payloadData;
        try {
          const j = JSON.parse(f);
          f = j.type === "event" ? `event ${j.event}` : j.type === "req" ? `req ${j.method}${j.method === "connect" ? ` client=${j.params?.client?.id} device=${Boolean(j.params?.device)} auth=${Object.keys(j.params?.auth ?? {}).join("+") || "none"}` : ""}`
            : j.type === "res" ? `res ${j.ok ? (j.payload?.type ?? "ok") : `error ${j.error?.code} ${j.error?.message}`}${j.payload?.auth ? ` scopes=${(j.payload.auth.scopes ?? []).join(",")}` : ""}` : j.type;
        } catch { f = f.slice(0, 80); }
        s.frames.push(`${m.method.endsWith("Sent") ? ">" : "<"} ${f}`);
        break;
      }
      case "Network.webSocketClosed": { const s = sockets.get(p.requestId); if (s) s.closed = true; break; }
      case "Page.loadEventFired": loadAt = performance.now() - t0; break;
    }
  });

  let code = 0;
  try {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    await send("Network.enable", {}, sessionId);
    await send("Page.enable", {}, sessionId);
    await send("Network.setCacheDisabled", { cacheDisabled: true }, sessionId);
    if (opts.cookie) {
      const u = new URL(target);
      await send("Network.setCookie", { name: "__Host-claw", value: opts.cookie.replace(/^__Host-claw=/, ""),
        url: `${u.protocol}//${u.host}/`, path: "/", secure: true, httpOnly: true, sameSite: "Lax" }, sessionId);
    }
    await send("Page.navigate", { url: withToken(target).href }, sessionId);
    const hardEnd = performance.now() + timeoutMs;
    const idle = Number(opts.idle ?? 3000);
    while (performance.now() < hardEnd) {
      await new Promise((r) => setTimeout(r, 250));
      if (loadAt !== null && performance.now() - lastActivity > idle) break;
    }
    const { result } = await send("Runtime.evaluate", { expression: "document.title + ' | ' + location.pathname", returnByValue: true }, sessionId);
    const http = order;
    const byStatus = {};
    for (const r of http) byStatus[r.failed ? `failed:${r.failed}` : r.status ?? "pending"] = (byStatus[`${r.failed ? `failed:${r.failed}` : r.status ?? "pending"}`] ?? 0) + 1;
    const byType = {};
    for (const r of http) byType[r.type] = (byType[r.type] ?? 0) + 1;
    const short = (r) => `${r.status ?? (r.failed ? "ERR" : "...")} ${r.method} ${redact(new URL(r.url).pathname + new URL(r.url).search).slice(0, 90)}${r.authorization ? " [Authorization]" : ""}${r.cookie ? " [cookie]" : ""}`;
    if (opts.v) for (const r of http) console.log(`${r.at.toFixed(0).padStart(6)} ${r.type.padEnd(10)} ${short(r)}`);
    const summary = {
      page: result.value, loadEventMs: loadAt && Math.round(loadAt), requests: http.length, statuses: byStatus, types: byType,
      withAuthorization: http.filter((r) => r.authorization).map(short),
      withoutCookie: http.filter((r) => r.cookie === false).length,
      fetchXhr: http.filter((r) => r.type === "Fetch" || r.type === "XHR").map(short),
      afterLoad: http.filter((r) => r.afterLoad).length,
      websockets: [...sockets.values()],
    };
    console.log(JSON.stringify(summary, null, 2));
    const allow = opts["allow-fail"] ? new RegExp(opts["allow-fail"]) : null;
    const bad = http.filter((r) => (r.failed || !(r.status >= 200 && r.status < 400))
      && !(allow && allow.test(new URL(r.url).pathname)));
    code = bad.length || ![...sockets.values()].some((s) => s.frames.some((f) => f.includes("hello-ok"))) ? 1 : 0;
  } catch (e) {
    console.error(`client.mjs browser: ${e.message}\n${stderr.slice(-2000)}`);
    code = 3;
  } finally {
    chrome.kill("SIGTERM");
    await new Promise((r) => chrome.once("exit", r));
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return code;
}

// ---------------------------------------------------------------- main

const commands = { connect: cmdConnect, ui: cmdUi, api: cmdApi, sse: cmdSse, browser: cmdBrowser };
if (!commands[cmd]) usage(`unknown command ${cmd}`);
let exitCode = 3;
try {
  exitCode = await commands[cmd]();
} catch (e) {
  console.error(`client.mjs ${cmd}: ${e.message}`);
}
process.exit(exitCode);
