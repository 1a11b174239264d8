// InvokeWithResponseStream through the AWS SDK for JavaScript v3, as a Node
// user calls it. Prints one JSON line per thing seen, each with t = ms since
// the call was sent: {"t","status","version","contentType"} first, then
// {"t","chunk": base64} per PayloadChunk and {"t","complete": {...}} for
// InvokeComplete; or {"t","error","status","message"} when the call fails.
// Usage: node stream_sdk.mjs ENDPOINT ACCESS_KEY SECRET FUNCTION PAYLOAD [LogType] [Qualifier]
import { LambdaClient, InvokeWithResponseStreamCommand } from "@aws-sdk/client-lambda";

const [endpoint, accessKeyId, secretAccessKey, name, payload, logType, qualifier] = process.argv.slice(2);
const c = new LambdaClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey },
                             maxAttempts: 1 });
const t0 = Date.now();
const out = (o) => process.stdout.write(JSON.stringify({ t: Date.now() - t0, ...o }) + "\n");
try {
    const r = await c.send(new InvokeWithResponseStreamCommand({
        FunctionName: name, Payload: new TextEncoder().encode(payload),
        LogType: logType || undefined, Qualifier: qualifier || undefined,
    }));
    out({ status: r.StatusCode, version: r.ExecutedVersion, contentType: r.ResponseStreamContentType });
    for await (const ev of r.EventStream) {
        if (ev.PayloadChunk) out({ chunk: Buffer.from(ev.PayloadChunk.Payload).toString("base64") });
        else if (ev.InvokeComplete) out({ complete: ev.InvokeComplete });
        else out({ other: Object.keys(ev) });
    }
} catch (e) {
    out({ error: e.name, status: e.$metadata?.httpStatusCode, message: e.message });
}
