// The Lambda API through the AWS SDK for JavaScript v3, as a Node user calls
// it: create (Buffer ZipFile), wait for Active, invoke with Tail, get, update,
// list, a typed error, delete. Exits non-zero on the first wrong answer.
// Usage: node lambda_sdk.mjs ENDPOINT ACCESS_KEY SECRET ZIP_PATH
import assert from "node:assert/strict";
import fs from "node:fs";
import {
    LambdaClient, CreateFunctionCommand, InvokeCommand, GetFunctionCommand,
    ListFunctionsCommand, DeleteFunctionCommand, UpdateFunctionConfigurationCommand,
    ResourceNotFoundException, waitUntilFunctionActiveV2, waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";

const [endpoint, accessKeyId, secretAccessKey, zipPath] = process.argv.slice(2);
const c = new LambdaClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey },
                             maxAttempts: 1 });
const name = `js-${process.pid}-${Date.now()}`;
const arn = `arn:aws:lambda:us-east-1:000000000000:function:${name}`;

const created = await c.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: "nodejs20.x", Handler: "index.handler",
    Role: "arn:aws:iam::000000000000:role/js", Code: { ZipFile: fs.readFileSync(zipPath) },
    Environment: { Variables: { FROM: "js" } }, Tags: { team: "sdk" },
}));
assert.equal(created.FunctionArn, arn);
assert.equal(created.State, "Pending");
assert.equal(created.LoggingConfig.LogGroup, `/aws/lambda/${name}`);
await waitUntilFunctionActiveV2({ client: c, maxWaitTime: 20 }, { FunctionName: name });

const r = await c.send(new InvokeCommand({
    FunctionName: name, LogType: "Tail", Payload: new TextEncoder().encode('{"a": 1}'),
}));
assert.equal(r.StatusCode, 200);
assert.equal(r.ExecutedVersion, "$LATEST");
assert.equal(r.FunctionError, undefined);
assert.deepEqual(JSON.parse(new TextDecoder().decode(r.Payload)),
                 { got: { a: 1 }, from: "js", arn });
const log = Buffer.from(r.LogResult, "base64").toString();
assert.match(log, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST$/m);
assert.match(log, /^REPORT RequestId: .*\tInit Duration: /m);

const g = await c.send(new GetFunctionCommand({ FunctionName: arn }));
assert.equal(g.Configuration.State, "Active");
assert.equal(g.Code.RepositoryType, "S3");
assert.deepEqual(g.Tags, { team: "sdk" });

const u = await c.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, MemorySize: 512 }));
assert.equal(u.MemorySize, 512);
await waitUntilFunctionUpdatedV2({ client: c, maxWaitTime: 20 }, { FunctionName: name });

const l = await c.send(new ListFunctionsCommand({}));
assert.ok(l.Functions.some((f) => f.FunctionName === name));

await assert.rejects(c.send(new GetFunctionCommand({ FunctionName: `${name}-missing` })),
                     (e) => e instanceof ResourceNotFoundException && e.$metadata.httpStatusCode === 404);
await c.send(new DeleteFunctionCommand({ FunctionName: name }));
await assert.rejects(c.send(new InvokeCommand({ FunctionName: name })), ResourceNotFoundException);
console.log("js sdk: ok");
