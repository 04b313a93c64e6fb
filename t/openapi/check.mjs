// t/openapi/check.mjs BASE_URL OPENAPI_FILE NODE_MODULES
//
// docs/openapi.yaml against the running module: the document is a valid
// OpenAPI 3.1 description; the requests of its x-claw-sequence are sent
// in order to BASE_URL (the admin API); each answer's status is the one
// the document says, and its body is valid against the schema of that
// status.  Every example of the document must be sent.  Prints one line
// per request, "ok" or "not ok" with why, and exits 1 on any failure.

import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, file, modules] = process.argv.slice(2);
const load = (name) => import(pathToFileURL(join(modules, name, 'index.js')).href);
const resolveIn = (name, sub) => pathToFileURL(join(modules, name, sub)).href;

const YAML = await import(resolveIn('yaml', 'dist/index.js'));
const { Validator } = await load('@seriousme/openapi-schema-validator');
const Ajv2020 = (await import(resolveIn('ajv', 'dist/2020.js'))).default;

let failed = 0;
const say = (ok, what) => {
    if (!ok) failed++;
    console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
};

const text = readFileSync(file, 'utf8');
const doc = YAML.parse(text);

const res = await new Validator().validate(doc);
say(res.valid, 'a valid OpenAPI 3.1 document'
    + (res.valid ? '' : ': ' + JSON.stringify(res.errors).slice(0, 400)));

// the document's schemas, for the answers
const ajv = new (Ajv2020.default || Ajv2020)({ strict: false, allErrors: true });
ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');

const ops = {};
for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
        if (op && op.operationId) {
            ops[op.operationId] = { path, method, op, item };
        }
    }
}

const deref = (o) => {
    while (o && o.$ref) {
        o = o.$ref.replace(/^#\//, '').split('/').reduce((a, k) => a[k], doc);
    }
    return o;
};

// every example, to be sent at least once
const unsent = new Set();
for (const [id, { op, item }] of Object.entries(ops)) {
    const content = op.requestBody && deref(op.requestBody).content;
    for (const media of Object.values(content || {})) {
        for (const name of Object.keys(media.examples || {})) {
            unsent.add(`${id} body ${name}`);
        }
    }
    for (const p of [...(item.parameters || []), ...(op.parameters || [])]) {
        for (const name of Object.keys(deref(p).examples || {})) {
            unsent.add(`${id} ${deref(p).name} ${name}`);
        }
    }
}

const paramExample = (o, pname, name) => {
    for (const p of [...(o.item.parameters || []), ...(o.op.parameters || [])]) {
        const q = deref(p);
        if (q.name === pname && q.examples && q.examples[name]) {
            unsent.delete(`${o.op.operationId} ${pname} ${name}`);
            return q.examples[name];
        }
    }
    throw new Error(`no example ${name} of ${pname} in ${o.op.operationId}`);
};

for (const step of doc['x-claw-sequence']) {
    const o = ops[step.op];
    let status = step.status;
    let body;
    let mediaType;
    let path = o.path.replace('{id}', encodeURIComponent(step.id || ''));
    const query = new URLSearchParams();

    if (step.body) {
        const content = deref(o.op.requestBody).content;
        mediaType = Object.keys(content)[0];
        const ex = content[mediaType].examples[step.body];
        unsent.delete(`${step.op} body ${step.body}`);
        body = JSON.stringify(ex.value);
        status = status || ex['x-status'];
    }

    if (step.digest) {
        const ex = paramExample(o, 'digest', step.digest);
        path = path.replace('{digest}', ex.value);
        status = status || ex['x-status'];
    }

    for (const q of ['limit', 'idle']) {
        if (step[q]) {
            const ex = paramExample(o, q, step[q]);
            if (ex.value !== null) query.set(q, ex.value);
            status = status || ex['x-status'];
        }
    }

    const qs = [...query].length ? '?' + query : '';
    const url = base + path + qs;
    const what = `${o.method.toUpperCase()} ${path}${qs}`
        + (step.body ? ` (${step.body})` : '');

    let resp;
    try {
        resp = await fetch(url, {
            method: o.method.toUpperCase(),
            body,
            headers: body ? { 'Content-Type': mediaType } : {},
        });
    } catch (e) {
        say(false, `${what}: ${e.message}`);
        continue;
    }

    const raw = await resp.text();

    if (resp.status !== status) {
        say(false, `${what}: ${resp.status}, not ${status}: ${raw.slice(0, 200)}`);
        continue;
    }

    const answer = deref(o.op.responses[String(resp.status)]);
    if (!answer) {
        say(false, `${what}: ${resp.status} is not in the document`);
        continue;
    }

    const schema = answer.content && answer.content['application/json']
                   && answer.content['application/json'].schema;

    if (!schema) {
        say(raw === '', `${what}: ${resp.status}, no body`);
        continue;
    }

    let json;
    try {
        json = JSON.parse(raw);
    } catch (e) {
        say(false, `${what}: ${resp.status}, not JSON: ${raw.slice(0, 200)}`);
        continue;
    }

    const ref = schema.$ref ? { $ref: 'doc' + schema.$ref } : schema;
    const validate = ajv.compile(ref.$ref ? ref : { ...schema });
    const ok = validate(json);
    say(ok, `${what}: ${resp.status}`
        + (ok ? ', valid' : ': ' + ajv.errorsText(validate.errors)));

    const etag = answer.headers && answer.headers.ETag;
    if (etag) {
        const v = resp.headers.get('etag');
        say(v && /^"[0-9a-f]{32}"$/.test(v), `${what}: ETag ${v}`);
    }
}

say(unsent.size === 0, 'every example sent'
    + (unsent.size ? ': not ' + [...unsent].join(', ') : ''));

process.exit(failed ? 1 : 0);
