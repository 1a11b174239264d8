/*
 * Ignis Node.js runtime: runtimes/node/bootstrap.js
 *
 * Owns everything that runs inside a Node.js function process: it is started
 * by the Ignis daemon as `/usr/bin/node <LAMBDA_RUNTIME_DIR>/bootstrap.js`
 * with cwd = $LAMBDA_TASK_ROOT and Lambda's environment, and then plays the
 * part of AWS's own Node.js runtime (aws-lambda-nodejs-runtime-interface-client
 * as shipped in nodejs20.x) so that function code written for Lambda runs
 * unchanged:
 *
 *   - loads the handler named by $_HANDLER from $LAMBDA_TASK_ROOT exactly as
 *     the RIC resolves it (module root / module / property path; extensionless,
 *     .js, .mjs, .cjs; ESM through import() so top-level await works; the
 *     nearest package.json "type" decides what .js is);
 *   - patches console (TEXT or JSON format, AWS_LAMBDA_LOG_LEVEL) and makes
 *     process.stdout/stderr blocking, so every byte the function logged is in
 *     the pipe before the result is posted (the daemon reads the pipes when the
 *     response arrives, then writes END/REPORT);
 *   - runs the Runtime API loop (GET next, POST response/error, POST
 *     init/error) with Node's own http module: one keep-alive connection
 *     (http.Agent with keepAlive and maxSockets 1, Nagle off), reused for
 *     every request; GET next has no timeout; a request that got no answer
 *     is retried on a new connection; an error raised while GET next is
 *     pending is posted on a second, short-lived connection;
 *   - implements the programming model: async handlers, callback handlers
 *     with context.callbackWaitsForEmptyEventLoop, context.succeed/fail/done,
 *     the context object, error shapes and log lines (`Invoke Error`,
 *     `Uncaught Exception`, `Unhandled Promise Rejection`), and the RIC's exit
 *     codes (129 uncaught exception / init failure, 128 unhandled rejection).
 *   - response streaming: awslambda.streamifyResponse handlers get a writable
 *     responseStream that is posted as it is written (POST /response with
 *     Lambda-Runtime-Function-Response-Mode: streaming, chunked), with
 *     setContentType and awslambda.HttpResponseStream.from's prelude; an
 *     error after the start is sent as the trailers
 *     Lambda-Runtime-Function-Error-Type/-Body, as the RIC does.
 *
 * Only Node's standard library is used, and nothing is parsed by hand: HTTP
 * goes through the http module, JSON through JSON.parse. Nothing here is
 * specific to a daemon build: the only contract is the Lambda Runtime API at
 * $AWS_LAMBDA_RUNTIME_API.
 */
'use strict';

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const env = process.env;
const API_PREFIX = '/2018-06-01/runtime';

/* ------------------------------------------------------------------------ */
/* Synchronous output                                                        */
/* ------------------------------------------------------------------------ */

let sleepCell = null;
function sleepMs(ms) {
  if (!sleepCell) sleepCell = new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}

/* Writes all of `data` to fd before returning. Copes with partial writes and
 * with a descriptor some other code switched to non-blocking mode (EAGAIN).
 * A vanished reader (EPIPE) is not the function's problem: drop the data. */
function writeAllSync(fd, data) {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        sleepMs(1);
        continue;
      }
      if (e.code === 'EINTR') continue;
      return;
    }
  }
}

/* process.stdout/stderr are created lazily by a configurable getter. Wrap it
 * so that, whenever user code (or Node itself) first touches the stream, its
 * handle is switched to blocking writes: then stream.write() on a pipe hands
 * the data to the kernel before it returns, as it already does for files and
 * TTYs. */
function makeStdioBlocking(name) {
  const desc = Object.getOwnPropertyDescriptor(process, name);
  if (!desc || typeof desc.get !== 'function' || !desc.configurable) return;
  const origGet = desc.get;
  let stream = null;
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: desc.enumerable,
    get() {
      if (stream === null) {
        stream = origGet.call(process);
        const h = stream && stream._handle;
        if (h && typeof h.setBlocking === 'function') {
          try {
            h.setBlocking(true);
          } catch (_) {
            /* keep the async stream */
          }
        }
      }
      return stream;
    },
  });
}

/* ------------------------------------------------------------------------ */
/* Errors (names and shapes as the RIC reports them)                         */
/* ------------------------------------------------------------------------ */

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const C of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  C.prototype.name = 'Runtime.' + C.name;
}

function looksLikeError(o) {
  return (
    !!o &&
    typeof o.name === 'string' &&
    o.name !== '' &&
    typeof o.message === 'string' &&
    o.message !== '' &&
    typeof o.stack === 'string' &&
    o.stack !== ''
  );
}

function toError(e) {
  return e instanceof Error ? e : new Error(e);
}

/* The body posted to /error and /init/error. Non-errors are reported by their
 * typeof and toString(), with an empty trace. */
function errorBody(err) {
  try {
    if (util.types.isNativeError(err) || looksLikeError(err)) {
      const name = err.name;
      const message = err.message;
      return {
        errorType: typeof name === 'string' ? name.replaceAll('\x7F', '%7F') : name,
        errorMessage: typeof message === 'string' ? message.replaceAll('\x7F', '%7F') : message,
        trace: err.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof err, errorMessage: err.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

/* name/message/code/stack are not enumerable; put them in front of the
 * error's own properties, stack as an array of lines. */
function errorReplacer(_key, value) {
  if (value instanceof Error) {
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  }
  return value;
}

function formatErrorForLog(err) {
  try {
    return '\t' + JSON.stringify(err, errorReplacer);
  } catch (_) {
    return '\t' + JSON.stringify(errorBody(err));
  }
}

/* ------------------------------------------------------------------------ */
/* Console patching                                                          */
/* ------------------------------------------------------------------------ */

const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
let currentRequestId; // mirrored in globalThis[REQUEST_ID] for tools that read it

function setRequestId(id) {
  currentRequestId = id;
  globalThis[REQUEST_ID] = id;
}

const LEVELS = {
  TRACE: 1,
  DEBUG: 2,
  INFO: 3,
  WARN: 4,
  ERROR: 5,
  FATAL: 6,
};

function textRecord(level, msg, params) {
  const text = params.length === 0 ? util.format(msg) : util.format(msg, ...params);
  return new Date().toISOString() + '\t' + currentRequestId + '\t' + level + '\t' + text + '\n';
}

function jsonErrorFields(_key, value) {
  if (value instanceof Error) {
    const ctor = value.constructor;
    return Object.assign(
      {
        errorType: (ctor && ctor.name) || 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function jsonRecord(level, msg, params) {
  const rec = { timestamp: new Date().toISOString(), level, requestId: currentRequestId };
  if (params.length === 0) {
    rec.message = msg;
    try {
      return JSON.stringify(rec, jsonErrorFields) + '\n';
    } catch (_) {
      rec.message = util.format(msg);
      return JSON.stringify(rec) + '\n';
    }
  }
  rec.message = util.format(msg, ...params);
  const all = [msg, ...params];
  for (const p of all) {
    if (p instanceof Error) {
      const ctor = p.constructor;
      rec.errorType = (ctor && ctor.name) || 'UnknownError';
      rec.errorMessage = p.message;
      rec.stackTrace = typeof p.stack === 'string' ? p.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(rec) + '\n';
}

/* logError(label, err): the runtime's own error records. */
let logError = null;

function patchConsole() {
  const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const record = json ? jsonRecord : textRecord;
  const min = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const nop = () => {};
  const make = (level) =>
    LEVELS[level] >= min
      ? function (msg, ...params) {
          writeAllSync(1, record(level, msg, params));
        }
      : nop;

  console.trace = make('TRACE');
  console.debug = make('DEBUG');
  console.info = make('INFO');
  console.log = console.info;
  console.warn = make('WARN');
  console.error = make('ERROR');
  // FATAL is never filtered out
  console.fatal = function (msg, ...params) {
    writeAllSync(1, record('FATAL', msg, params));
  };

  logError = json
    ? (_label, err) => console.error(toError(err))
    : (label, err) => console.error(label, formatErrorForLog(toError(err)));
}

/* ------------------------------------------------------------------------ */
/* Runtime API client: Node's http module, one keep-alive connection         */
/* ------------------------------------------------------------------------ */

// Response headers may be large (Lambda-Runtime-Client-Context and
// Lambda-Runtime-Cognito-Identity); Node's default limit is 16 KiB.
const MAX_HEADER_SIZE = 1 << 20;
const RETRIES = 4;

/* Connections are made with Nagle's algorithm off: every request is written
 * whole and then waited for. */
class NoDelayAgent extends http.Agent {
  createConnection(options, oncreate) {
    const s = net.createConnection(options, oncreate);
    s.setNoDelay(true);
    return s;
  }
}

class RuntimeApi {
  constructor(hostPort) {
    let host = hostPort;
    let port = 80;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) || /^([^:]+)(?::(\d+))?$/.exec(hostPort);
    if (m) {
      host = m[1];
      if (m[2]) port = parseInt(m[2], 10);
    }
    this.hostPort = hostPort;
    this.host = host;
    this.port = port;
    // One connection, reused for GET /next and the POSTs. The agent queues a
    // request made while the connection is busy and, when the server closes
    // the connection, makes a new one for the next request.
    this.agent = new NoDelayAgent({ keepAlive: true, maxSockets: 1 });
    this.sideAgent = null; // made on first use; see post()
    this.nextPending = false;
    this.nextCb = null;
    this.onNextAnswer = (err, res, body) => {
      const cb = this.nextCb;
      this.nextPending = false;
      this.nextCb = null;
      if (err) cb(err, 0, null, null);
      else cb(null, res.statusCode, res.headers, body);
    };
    // Headers as an array (rawHeaders form) are written as given, without
    // the per-name bookkeeping of setHeader(). http.request copies options.
    this.nextOptions = this._options(this.agent, 'GET', API_PREFIX + '/invocation/next', [
      'Host',
      hostPort,
      'User-Agent',
      'ignis-node/1',
    ]);
  }

  _options(agent, method, urlPath, headers) {
    return {
      agent,
      host: this.host,
      port: this.port,
      method,
      path: urlPath,
      headers,
      maxHeaderSize: MAX_HEADER_SIZE,
    };
  }

  /* One request; cb(err, res, bodyBuffer) is called once. A
   * request that got no answer at all (refused, or the server closed a stale
   * keep-alive connection) is sent again on a new connection, up to RETRIES
   * times. */
  _send(options, body, cb, tries) {
    const req = http.request(options);
    let answered = false;
    let over = false;
    const finish = (err, res, buf) => {
      if (over) return;
      over = true;
      cb(err, res, buf);
    };
    req.on('response', (res) => {
      answered = true;
      const parts = [];
      let have = 0;
      res.on('data', (d) => {
        parts.push(d);
        have += d.length;
      });
      res.on('end', () => {
        finish(null, res, parts.length === 1 ? parts[0] : Buffer.concat(parts, have));
      });
      res.on('error', finish); // the connection was lost in the middle of the body
    });
    req.on('error', (err) => {
      if (over) return;
      if (answered || tries >= RETRIES || (typeof err.code === 'string' && err.code.startsWith('HPE_'))) {
        finish(err); // an answer we cannot use: do not ask again
        return;
      }
      over = true;
      const n = tries + 1;
      if (n === 1) this._send(options, body, cb, n);
      else setTimeout(() => this._send(options, body, cb, n), 10 * n);
    });
    req.end(body);
  }

  /* cb(err, status, headers, bodyBuffer); headers have lower-case names. */
  next(cb) {
    this.nextPending = true;
    this.nextCb = cb;
    this._send(this.nextOptions, undefined, this.onNextAnswer, 0);
  }

  /* errorType: the Lambda-Runtime-Function-Error-Type header, or undefined.
   * cb(err, res, bodyBuffer) */
  post(urlPath, body, contentType, errorType, cb) {
    const len = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
    const headers = ['Host', this.hostPort, 'Content-Type', contentType, 'Content-Length', '' + len];
    if (errorType !== undefined) headers.push('Lambda-Runtime-Function-Error-Type', errorType);
    let agent = this.agent;
    if (this.nextPending) {
      // The connection is parked in the long poll for the next event (e.g. a
      // timer threw after the response was sent): report on a short-lived
      // connection of its own instead of queueing behind a request that may
      // never end.
      if (this.sideAgent === null) this.sideAgent = new NoDelayAgent({ keepAlive: false });
      agent = this.sideAgent;
    }
    this._send(this._options(agent, 'POST', urlPath, headers), body, cb, 0);
  }
}

/* Header values must be plain visible ASCII (or tab/space). */
function headerSafe(v) {
  return String(v).replace(/[^\t\x20-\x7e]/g, '');
}

function serializeResult(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

let api = null;

function postInvocationResponse(result, id, done) {
  const body = serializeResult(result); // throws before anything is sent
  api.post(
    API_PREFIX + '/invocation/' + encodeURIComponent(id) + '/response',
    body,
    'application/json',
    undefined,
    () => done(),
  );
}

/* The request a streamed response is written to: chunked, on the keep-alive
 * connection (free: GET next has been answered), headers sent with the first
 * write. cb(err) once the daemon has answered it. */
function openResponseStream(id, cb) {
  const req = http.request(
    api._options(api.agent, 'POST', API_PREFIX + '/invocation/' + encodeURIComponent(id) + '/response', {
      Host: api.hostPort,
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      'Transfer-Encoding': 'chunked',
      Trailer: STREAM_TRAILER_TYPE + ', ' + STREAM_TRAILER_BODY,
      'Content-Type': 'application/octet-stream',
    }),
  );
  let over = false;
  const finish = (err) => {
    if (over) return;
    over = true;
    cb(err);
  };
  req.on('response', (res) => {
    res.resume();
    res.on('end', () => finish(null));
    res.on('error', finish);
  });
  req.on('error', finish);
  return req;
}

function postInvocationError(err, id, done) {
  const rb = errorBody(err);
  let body;
  try {
    body = JSON.stringify(rb);
  } catch (_) {
    body = JSON.stringify({ errorType: 'handled', errorMessage: 'Unable to stringify error' });
  }
  api.post(
    API_PREFIX + '/invocation/' + encodeURIComponent(id) + '/error',
    body,
    'application/json',
    headerSafe(rb.errorType),
    () => done(),
  );
}

function postInitError(err, done) {
  const rb = errorBody(err);
  api.post(
    API_PREFIX + '/init/error',
    JSON.stringify(rb),
    'application/json',
    headerSafe(rb.errorType),
    () => done(),
  );
}

/* ------------------------------------------------------------------------ */
/* Loading the handler                                                       */
/* ------------------------------------------------------------------------ */

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

function typeModuleFolder(dir) {
  // Nearest package.json decides; a node_modules boundary or / means no.
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (dir === '/') return false;
    const up = path.resolve(dir, '..');
    if (up === dir) return false;
    dir = up;
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined;
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);

  const bare = requireIfExists(base);
  if (bare) return bare;

  const esmDir = typeModuleFolder(path.resolve(path.dirname(base)));
  if (!esmDir) {
    const js = requireIfExists(base + '.js');
    if (js) return js;
  }
  const found =
    (esmDir && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (found) return found;

  // Fall back to Node's own resolution from the task root (node_modules etc.).
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

function installAwsLambdaGlobal() {
  const off = env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING] = STREAM_RESPONSE;
      if (options && typeof options.highWaterMark === 'number') {
        handler[HIGH_WATER_MARK] = parseInt(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream: class HttpResponseStream {
      static from(stream, prelude) {
        stream.setContentType('application/vnd.awslambda.http-integration-response');
        const meta = JSON.stringify(prelude);
        stream._onBeforeFirstWrite = (write) => {
          write(meta);
          write(new Uint8Array(8));
        };
        return stream;
      }
    },
  };
}

async function loadHandler(appRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const modAndFn = path.basename(handlerString);
  const moduleRoot = handlerString.substring(0, handlerString.indexOf(modAndFn));
  const m = /^([^.]*)\.(.*)$/.exec(modAndFn);
  if (!m) throw new MalformedHandlerName('Bad handler');
  const moduleName = m[1];
  const fnPath = m[2];

  installAwsLambdaGlobal();
  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }

  const fn = fnPath.split('.').reduce((o, k) => o && o[k], app);
  if (!fn) throw new HandlerNotFound(`${handlerString} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${handlerString} is not a function`);
  return fn;
}

function streamingMode(fn) {
  const s = fn[STREAMING];
  if (s === undefined || s === null || s === false) return false;
  if (s === STREAM_RESPONSE) return STREAM_RESPONSE;
  throw new MalformedStreamingHandler('Only response streaming is supported.');
}

function isAsyncFunction(fn) {
  try {
    return !!fn && fn.constructor && fn.constructor.name === 'AsyncFunction';
  } catch (_) {
    return false;
  }
}

function isPromise(v) {
  return !!v && typeof v.then === 'function';
}

/* ------------------------------------------------------------------------ */
/* The invoke loop                                                           */
/* ------------------------------------------------------------------------ */

const NOOP = () => {};
let beforeExitAction = NOOP;
process.on('beforeExit', () => {
  const f = beforeExitAction;
  f();
});

const errorCallbacks = {
  uncaughtException: (err) => postInitError(err, () => process.exit(129)),
  unhandledRejection: (err) => postInitError(err, () => process.exit(128)),
};

let handler = null;
let handlerIsAsync = false;
let handlerStreaming = false;

const FUNCTION_VERSION = env.AWS_LAMBDA_FUNCTION_VERSION;
const FUNCTION_NAME = env.AWS_LAMBDA_FUNCTION_NAME;
const MEMORY_SIZE = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
const LOG_GROUP = env.AWS_LAMBDA_LOG_GROUP_NAME;
const LOG_STREAM = env.AWS_LAMBDA_LOG_STREAM_NAME;
let lastTraceId;

function parseHeaderJson(v, what) {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v);
  } catch (e) {
    throw new Error(`Cannot parse ${what} as json: ${e.toString()}`);
  }
}

function scheduleNext() {
  api.next(onNext);
}

function onNext(err, status, headers, body) {
  if (err || status < 200 || status > 299) {
    const why = err ? err.message || String(err) : 'HTTP ' + status;
    console.log(`Unexpected Top Level Error: Error: Failed to get next invocation: ${why}`);
    process.exit(129);
    return;
  }
  const id = headers['lambda-runtime-aws-request-id'];
  if (!id) {
    console.log('Unexpected Top Level Error: invocation id is missing or invalid');
    process.exit(129);
    return;
  }
  setRequestId(id);
  if (handlerStreaming) invokeStreaming(id, headers, body);
  else invoke(id, headers, body);
}

function setInvokeErrorCallbacks(id) {
  errorCallbacks.uncaughtException = (err) => postInvocationError(err, id, () => process.exit(129));
  errorCallbacks.unhandledRejection = (err) => postInvocationError(err, id, () => process.exit(128));
}

/* Adds the environment and header data to ctx (the object already carries
 * callbackWaitsForEmptyEventLoop and succeed/fail/done). */
function fillContext(ctx, id, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) {
    if (trace !== lastTraceId) env._X_AMZN_TRACE_ID = trace;
  } else if (lastTraceId !== undefined) {
    delete env._X_AMZN_TRACE_ID;
  }
  lastTraceId = trace || undefined;

  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  ctx.functionVersion = FUNCTION_VERSION;
  ctx.functionName = FUNCTION_NAME;
  ctx.memoryLimitInMB = MEMORY_SIZE;
  ctx.logGroupName = LOG_GROUP;
  ctx.logStreamName = LOG_STREAM;
  ctx.clientContext = parseHeaderJson(headers['lambda-runtime-client-context'], 'ClientContext');
  ctx.identity = parseHeaderJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  ctx.invokedFunctionArn = headers['lambda-runtime-invoked-function-arn'];
  ctx.awsRequestId = id;
  ctx.tenantId = headers['lambda-runtime-aws-tenant-id'];
  ctx.getRemainingTimeInMillis = function () {
    return deadline - Date.now();
  };
  return ctx;
}

function invoke(id, headers, body) {
  let completed = false; // a result or the exit-listener outcome was posted
  let settled = false; // the first of callback/succeed/fail/done was called
  let waitForEmptyEventLoop = true;

  const postError = (err) => {
    logError('Invoke Error', err);
    postInvocationError(err, id, scheduleNext);
  };
  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    postInvocationResponse(result, id, scheduleNext);
  };
  const finish = (err, result) => {
    beforeExitAction = NOOP;
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };
  // Only the first call of any of these counts; a call that throws (an
  // unserialisable result) does not count, so the error can be reported.
  const once = (f) =>
    function () {
      if (settled) return;
      f.apply(null, arguments);
      settled = true;
    };
  const callback = once((err, result) => {
    beforeExitAction = NOOP;
    if (err !== undefined && err !== null) postError(err);
    else if (!waitForEmptyEventLoop) complete(result);
    else beforeExitAction = () => setImmediate(() => complete(result));
  });
  const done = once(finish);
  const succeed = once((result) => finish(null, result));
  const fail = once((err) => (err === undefined || err === null ? finish('handled') : finish(err, null)));

  const ctx = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyEventLoop = v;
    },
    succeed,
    fail,
    done,
  };

  try {
    setInvokeErrorCallbacks(id);
    // The event loop ran dry before the handler reported anything.
    beforeExitAction = () => {
      beforeExitAction = NOOP;
      completed = true;
      if (handlerIsAsync) {
        const e = new NodeJsExit();
        logError('Invoke Error', e);
        postInvocationError(e, id, scheduleNext);
      } else {
        postInvocationResponse(null, id, scheduleNext);
      }
    };
    const event = JSON.parse(body.toString('utf8'));
    const ret = handler(event, fillContext(ctx, id, headers), callback);
    if (isPromise(ret)) ret.then(succeed, fail).catch(fail);
  } catch (err) {
    callback(err);
  }
}

const STREAM_TRAILER_TYPE = 'Lambda-Runtime-Function-Error-Type';
const STREAM_TRAILER_BODY = 'Lambda-Runtime-Function-Error-Body';

/* Streaming handlers: handler(event, responseStream, context). What the
 * handler writes goes to the daemon as it is written (the Writable's
 * callbacks wait for the socket, so a slow reader slows the handler down);
 * a failure before the end is sent as trailers and ends the request. */
function invokeStreaming(id, headers, body) {
  const { Writable } = require('stream');
  let started = false; // headers sent: Content-Type is fixed
  let ended = false; // the request was ended (normally or with error trailers)
  let reported = false; // the next invocation was scheduled
  let answered = false;
  let afterAnswer = null;
  const req = openResponseStream(id, () => {
    answered = true;
    if (afterAnswer) afterAnswer();
  });
  const whenAnswered = (f) => (answered ? f() : (afterAnswer = f));
  const next = () => {
    if (reported) return;
    reported = true;
    beforeExitAction = NOOP;
    whenAnswered(scheduleNext);
  };
  const send = (chunk, cb) => {
    if (!req.write(chunk)) req.once('drain', cb);
    else process.nextTick(cb);
  };
  const start = (cb) => {
    if (started) return cb();
    started = true;
    if (typeof stream._onBeforeFirstWrite !== 'function') return cb();
    const parts = [];
    stream._onBeforeFirstWrite((c) => parts.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c)));
    send(Buffer.concat(parts), cb);
  };
  const hwm = handler[HIGH_WATER_MARK];
  const stream = new Writable({
    highWaterMark: typeof hwm === 'number' && hwm >= 0 ? hwm : undefined,
    write(chunk, _enc, cb) {
      start(() => send(chunk, cb));
    },
    final(cb) {
      start(() => {
        ended = true;
        req.end(cb);
      });
    },
  });
  const write = stream.write.bind(stream);
  stream.write = function (chunk, encoding, cb) {
    // as the RIC: anything but text and bytes is sent as its JSON
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      chunk = JSON.stringify(chunk);
    }
    return write(chunk, encoding, cb);
  };
  stream.setContentType = (ct) => {
    if (started) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    req.setHeader('Content-Type', headerSafe(ct));
  };

  const fail = (err, then) => {
    const e = typeof err === 'string' ? new Error(err) : err;
    logError('Invoke Error', e);
    if (!ended) {
      ended = true;
      const rb = errorBody(e);
      let json;
      try {
        json = JSON.stringify(rb);
      } catch (_) {
        json = JSON.stringify({ errorType: 'handled', errorMessage: 'Unable to stringify error' });
      }
      req.addTrailers({
        [STREAM_TRAILER_TYPE]: headerSafe(rb.errorType),
        [STREAM_TRAILER_BODY]: Buffer.from(json).toString('base64'),
      });
      started = true;
      req.end();
    }
    if (then) whenAnswered(then);
    else next();
  };
  stream.on('error', (err) => fail(err));
  const ctx = { callbackWaitsForEmptyEventLoop: true, succeed: NOOP, fail: NOOP, done: NOOP };

  errorCallbacks.uncaughtException = (err) => fail(err, () => process.exit(129));
  errorCallbacks.unhandledRejection = (err) => fail(err, () => process.exit(128));
  beforeExitAction = () => fail(new NodeJsExit());
  (async () => {
    const event = JSON.parse(body.toString('utf8'));
    const ret = handler(event, stream, fillContext(ctx, id, headers));
    if (!isPromise(ret)) return fail('Streaming does not support non-async handlers.');
    const result = await ret;
    if (result !== undefined) console.warn('Streaming handlers ignore return values.');
    if (!stream.writableEnded) return fail('Response stream is not finished.');
    if (!stream.writableFinished) await new Promise((r) => stream.once('finish', r));
    next();
  })().catch((err) => fail(err));
}

/* ------------------------------------------------------------------------ */
/* Start                                                                     */
/* ------------------------------------------------------------------------ */

async function main() {
  makeStdioBlocking('stdout');
  makeStdioBlocking('stderr');
  patchConsole();

  const apiAddr = env.AWS_LAMBDA_RUNTIME_API;
  if (!apiAddr) {
    writeAllSync(2, 'ignis node runtime: AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  api = new RuntimeApi(apiAddr);

  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    errorCallbacks.uncaughtException(err);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', err);
    errorCallbacks.unhandledRejection(err);
  });

  const appRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  const handlerString = env._HANDLER || '';
  try {
    handler = await loadHandler(appRoot, handlerString);
    handlerStreaming = streamingMode(handler);
  } catch (err) {
    // Reported like the RIC, whose load failure surfaces as an uncaught
    // exception during init: logged, posted to /init/error, exit 129.
    logError('Uncaught Exception', err);
    errorCallbacks.uncaughtException(err);
    return;
  }
  handlerIsAsync = isAsyncFunction(handler);
  scheduleNext();
}

if (require.main === module) {
  main();
} else {
  // Loaded with require() (tests, benchmarks): expose the pieces, start nothing.
  module.exports = {
    RuntimeApi,
    errorBody,
    formatErrorForLog,
    loadHandler,
    textRecord,
    jsonRecord,
    _setup(apiObj, fn) {
      api = apiObj;
      handler = fn;
      handlerIsAsync = isAsyncFunction(fn);
      handlerStreaming = streamingMode(fn);
      patchConsole();
    },
    _onNext: onNext,
  };
}
