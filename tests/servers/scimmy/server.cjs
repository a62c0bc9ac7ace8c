// A SCIM 2.0 service provider built from the npm packages SCIMMY (protocol:
// schemas, filter parsing, PATCH, list responses) and SCIMMY Express Routers
// (HTTP endpoints), with the in-memory store every SCIMMY application writes
// itself. Started by tests/servers/scimmy.sh; see docs/scim.md for what the
// tests rely on.
//
//   node server.cjs PORT TOKEN_FILE FILTER(on|off) MAX_RESULTS
//
// FILTER=off announces filter.supported=false and answers every list query
// with the unfiltered list, as the servers of issue 17 do. SCIMMY itself
// answers PATCH by applying the operations to the resource and writing it
// back whole, and stores only the core User schema (no enterprise
// extension): homebase must leave out what the server does not declare.
"use strict";
const fs = require("fs");
const express = require("express");
const SCIMMY = require("scimmy");
const SCIMMYRouters = require("scimmy-routers").default ?? require("scimmy-routers");

const [port, tokenFile, filterMode, maxResultsArg] = process.argv.slice(2);
const token = fs.readFileSync(tokenFile, "utf8").trim();
const filtering = filterMode === "on";
const maxResults = Number(maxResultsArg) || 50;

let next = 1;
const store = { User: new Map(), Group: new Map() };

function stamp(resource, old) {
    const now = new Date().toISOString();
    return { ...resource, meta: { created: old?.meta?.created ?? now, lastModified: now } };
}

function handlers(kind) {
    const items = store[kind];
    const unique = kind === "User" ? "userName" : "displayName";
    return {
        egress(resource) {
            if (resource.id) {
                const found = items.get(resource.id);
                if (!found) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                return found;
            }
            // A page is never longer than maxResults, whatever count asks.
            const c = resource.constraints ?? {};
            if (!c.count || c.count > maxResults) c.count = maxResults;
            const all = [...items.values()];
            return filtering && resource.filter ? resource.filter.match(all) : all;
        },
        ingress(resource, instance) {
            const key = String(instance[unique] ?? "").toLowerCase();
            for (const [id, other] of items) {
                if (id !== resource.id && String(other[unique] ?? "").toLowerCase() === key) {
                    throw new SCIMMY.Types.Error(409, "uniqueness", `${unique} is taken`);
                }
            }
            const data = JSON.parse(JSON.stringify(instance));
            delete data.password;
            if (resource.id) {
                const old = items.get(resource.id);
                if (!old) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                items.set(resource.id, stamp({ ...data, id: resource.id }, old));
                return items.get(resource.id);
            }
            const id = String(next++);
            items.set(id, stamp({ ...data, id }));
            return items.get(id);
        },
        degress(resource) {
            if (!items.delete(resource.id)) {
                throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            }
        },
    };
}

SCIMMY.Resources.declare(SCIMMY.Resources.User, handlers("User"));
SCIMMY.Resources.declare(SCIMMY.Resources.Group, handlers("Group"));

const app = express();
app.use("/v2", new SCIMMYRouters({
    type: "bearer",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`) throw new Error("bad token");
        return "homebase-tests";
    },
}));
// The routers announce every feature; this server has no Bulk, no sort,
// no ETags, and filters only in FILTER=on mode.
SCIMMY.Config.set({
    bulk: { supported: false },
    sort: false,
    etag: false,
    filter: { supported: filtering, maxResults },
});
const server = app.listen(Number(port), "127.0.0.1");
// Node closes idle keep-alive connections after 5 s, so a client reusing one
// at that moment loses its request; servers in production keep them longer.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
