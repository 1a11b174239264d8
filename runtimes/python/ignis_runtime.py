"""Ignis Python runtime: what runs inside every Python function process.

The Ignis daemon starts bootstrap.py, which imports this module (precompiled
by `make`: a script run directly is compiled anew on every cold start), as

    /usr/bin/python3 -S $LAMBDA_RUNTIME_DIR/bootstrap.py

with cwd = $LAMBDA_TASK_ROOT (the unzipped function code) and Lambda's usual
environment (AWS_LAMBDA_RUNTIME_API, _HANDLER, AWS_LAMBDA_FUNCTION_NAME, ...).
It speaks the Lambda Runtime API (2018-06-01) to the daemon over one kept-alive
HTTP/1.1 connection (libcurl through pycurl, else http.client) and aims to behave
like AWS's own Python runtime (awslambdaric), so function code written for
Lambda runs unchanged.

What this file owns
-------------------
* Init: sys.path (task root first), loading the handler named by _HANDLER
  ("app.handler", "src/app.handler", "pkg.mod.handler"), and reporting init
  failures once to POST /runtime/init/error -- Runtime.MalformedHandlerName,
  Runtime.ImportModuleError, Runtime.UserCodeSyntaxError,
  Runtime.HandlerNotFound, Runtime.BuiltInModuleConflict, or the class name of
  an exception raised while importing -- and then exiting with status 1.
* The invoke loop: GET /runtime/invocation/next (blocks, no timeout), build
  the context object, json-decode the event, call handler(event, context),
  POST the JSON result to .../response, or an error document to .../error
  (the handler's exception, Runtime.UnmarshalError, Runtime.MarshalError,
  Runtime.LambdaContextUnmarshalError).  Module state persists between
  invokes: it is one long-lived process.  Every error POST carries
  Lambda-Runtime-Function-Error-Type: <errorType>.  The context's
  memory_limit_in_mb is a *string*, exactly as awslambdaric provides it.
* Runtime API status handling: a 4xx answer to a POST (e.g. 413 for an
  oversized response, which the daemon settles itself) is logged to stderr
  and the loop goes on; a 5xx, or anything but 200 from /next, means the
  daemon is done with this process: exit 1.
* Logging as awslambdaric sets it up: a handler on the root logger printing
  "[LEVEL]\\t<UTC time>.mmmZ\\t<request id>\\t<message>" (or JSON records when
  AWS_LAMBDA_LOG_FORMAT=JSON), root level from AWS_LAMBDA_LOG_LEVEL
  (default: Python's WARNING), and "[ERROR] Type: message" + traceback lines
  for unhandled errors.
* Output ordering: stdout/stderr are pipes read by the daemon, which writes
  END/REPORT once the response arrives, so everything the handler printed is
  flushed *before* the response/error is posted.  stdout is line buffered
  (one write(2) per line, so long-running handlers' output reaches the daemon
  promptly) rather than awslambdaric's flush-on-every-write().
* Lifetime: if the Runtime API becomes unreachable (connection refused, or
  dropped and not re-establishable) the daemon is gone and the process exits.

Deliberate differences from awslambdaric
----------------------------------------
* Error log lines are joined with "\\n" (what CloudWatch and `--log-type
  Tail` show) rather than the "\\r" awslambdaric uses when it has no telemetry
  log fd; traceback indentation uses U+00A0 exactly like awslambdaric.
* A log record whose formatted text does not end in a newline (e.g.
  logger.exception) gets one, since a pipe has no frame boundaries.
* The "LAMBDA_WARNING: Unhandled exception ..." line that awslambdaric logs
  before an init error refers to AWS managed runtime versions; it is omitted.
* JSON: the standard library json module is used (no simplejson); Decimal
  values are still encoded exactly as numbers like awslambdaric does.
  A missing Content-Type on /next is treated as application/json
  (awslambdaric would pass the raw bytes through, as it does for any other
  non-JSON content type).

HTTP client and its cost
------------------------
The project parses no HTTP by hand. The Runtime API is spoken through libcurl
(Debian's python3-pycurl, which scripts/install-deps.sh installs; AWS's own
runtime interface client is built on libcurl too): one easy handle, kept
alive, TCP_NODELAY, no timeout on GET /next. Without pycurl the standard
library's http.client does the same job, slower: it parses every response's
headers with the `email` package. Measured through the daemon on a 2-core VM
with a trivial handler (loaded machine, so ranges): warm p50 at one client
150-190 us with libcurl vs 285-360 us with http.client; 16 clients 6.2-6.8k
vs 3.8-4.2k invokes/s. pycurl's import adds ~9 ms to Init Duration
(http.client's ~13 ms is then not paid: it is imported only as the fallback).

Besides the optional pycurl only the standard library is used.  Keep the
per-invoke path free of imports and of work that can be done once at start-up.
"""

import json
import logging
import os
import socket
import sys
import time
import traceback

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

_API_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
# awslambdaric drops the X-Ray cause header at 1 MiB; the Ignis daemon's HTTP
# server keeps all request headers in a 32 KiB pool, so a deep traceback
# (RecursionError: ~100 KiB) would get the whole error POST rejected.
_XRAY_CAUSE_MAX = 8 * 1024
_MSG_MORE = getattr(socket, "MSG_MORE", 0)  # Linux; elsewhere a plain send

# errorType values used by awslambdaric (lambda_runtime_exception.py)
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

_ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE: awslambdaric's traceback indent
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class FaultException(Exception):
    """A runtime-detected error with a Lambda errorType (Runtime.*)."""

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


class RuntimeAPIGone(Exception):
    """The Runtime API cannot be reached any more: the daemon is gone."""


# ---------------------------------------------------------------------------
# Runtime API client: http.client over one persistent connection.
# ---------------------------------------------------------------------------


def _stdlib_connection(address):
    """An http.client connection for the Runtime API (imported only when
    pycurl is not available: http.client pulls in the email package, ~10 ms
    of cold start)."""
    import http.client

    class _RuntimeAPIConnection(http.client.HTTPConnection):
        """HTTPConnection with TCP_NODELAY, sending a request as one segment.

        http.client writes a request's header block and its body with two
        send()s.  With Nagle's algorithm on, the body would wait for the ACK of
        the headers (a delayed ACK: up to 40 ms), so TCP_NODELAY is set on every
        new socket (recent Pythons do it too; this makes it independent of the
        interpreter).  With it, though, headers and body leave as two segments
        and the daemon wakes up twice per POST; so when a body follows
        (body_follows, set per request by RuntimeAPIClient) the header block is
        sent with MSG_MORE, which holds it in the kernel until the body's send().
        """

        body_follows = False

        def connect(self):
            super().connect()
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send(self, data):
            if self.body_follows and self.sock is not None:
                self.body_follows = False
                self.sock.sendall(data, _MSG_MORE)
            else:
                super().send(data)

    # No timeout: GET /next blocks until the daemon has an event (and
    # timeout=None also ignores a socket.setdefaulttimeout() by user code).
    return _RuntimeAPIConnection(address, timeout=None), http.client


class RuntimeAPIClient:
    """Runtime API client: one kept-alive http.client connection, no timeout.

    Header dicts are built once; Content-Length is filled in by http.client.
    On a dropped connection the request is retried once on a fresh
    connection; if that fails too (or a connection cannot be made at all)
    the daemon is considered gone (RuntimeAPIGone).
    """

    def __init__(self, address, stdlib=True):
        self.address = address
        if stdlib:
            self._conn, self._http = _stdlib_connection(address)
        common = {
            "Host": address,
            "User-Agent": "ignis-python/%d.%d.%d" % tuple(sys.version_info[:3]),
        }
        self._next_url = _API_PREFIX + "/invocation/next"
        self._inv_prefix = _API_PREFIX + "/invocation/"
        self._init_error_url = _API_PREFIX + "/init/error"
        self._next_headers = common
        self._result_headers = {
            ct: dict(common, **{"Content-Type": ct})
            for ct in ("application/json", "application/unknown")
        }
        self._error_headers = dict(common, **{"Content-Type": "application/json"})

    def close(self):
        self._conn.close()

    def _roundtrip(self, method, url, body, headers):
        """Send one request, return (status, response HTTPMessage, body).

        The body is read in full, so the connection is ready for the next
        request.
        """
        conn = self._conn
        for attempt in (0, 1):
            if conn.sock is None:
                try:
                    conn.connect()
                except OSError as e:
                    conn.close()
                    raise RuntimeAPIGone(
                        "cannot connect to Runtime API at %s: %s" % (self.address, e)
                    ) from None
            try:
                conn.body_follows = bool(body)  # never for an empty body
                conn.request(method, url, body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, self._http.HTTPException) as e:
                conn.close()
                if attempt:
                    raise RuntimeAPIGone(
                        "connection to Runtime API at %s lost: %s"
                        % (self.address, str(e) or type(e).__name__)
                    ) from None
                continue
            return resp.status, resp.msg, data

    # -- Runtime API calls --------------------------------------------------
    def next_invocation(self):
        """GET /runtime/invocation/next -> (headers, body)."""
        status, msg, body = self._roundtrip("GET", self._next_url, None,
                                            self._next_headers)
        if status != 200:
            raise RuntimeAPIGone(
                "GET /runtime/invocation/next returned %d: %r" % (status, body[:200])
            )
        # http.client decodes header bytes as ISO-8859-1; the daemon sends
        # UTF-8 (a client context is JSON text and may hold any character).
        return {k.lower(): v if v.isascii() else _latin1_to_utf8(v)
                for k, v in msg.items()}, body

    def post_invocation_result(self, request_id, payload, content_type):
        self._check_post(
            self._roundtrip("POST", self._inv_prefix + request_id + "/response",
                            payload, self._result_headers[content_type]),
            "response", request_id)

    def post_invocation_error(self, request_id, error_json, error_type, xray_cause):
        headers = dict(self._error_headers)
        headers[_ERROR_TYPE_HEADER] = _header_safe(error_type)
        if xray_cause and len(xray_cause) < _XRAY_CAUSE_MAX:
            headers[_XRAY_CAUSE_HEADER] = xray_cause.encode("latin-1", "replace")
        self._check_post(
            self._roundtrip("POST", self._inv_prefix + request_id + "/error",
                            error_json.encode(), headers),
            "error", request_id)

    def post_init_error(self, error_json, error_type):
        headers = dict(self._error_headers)
        headers[_ERROR_TYPE_HEADER] = _header_safe(error_type)
        self._check_post(
            self._roundtrip("POST", self._init_error_url, error_json.encode(), headers),
            "init/error", None)

    @staticmethod
    def _check_post(result, what, request_id):
        status, _, body = result
        if 200 <= status < 300:
            return
        # Runtime API spec: 500 = "Container error. Non-recoverable state.
        # Runtime should exit promptly."  4xx (unknown request id, payload too
        # large, ...) are the daemon's verdict on this one invoke: log, go on.
        where = what if request_id is None else "%s for %s" % (what, request_id)
        if status >= 500:
            raise RuntimeAPIGone(
                "Runtime API returned %d to %s: %r" % (status, where, body[:200])
            )
        _write_stderr(
            "[ERROR] Runtime API rejected %s: %d %s\n"
            % (where, status, body[:500].decode("utf-8", "replace"))
        )


class CurlRuntimeAPIClient(RuntimeAPIClient):
    """The same client over libcurl (Debian's python3-pycurl), which AWS's own
    runtime interface client also uses underneath. libcurl does the HTTP;
    this class only hands it URLs, header lines and bodies. One easy handle
    keeps the connection alive; TCP_NODELAY; no timeout on GET /next;
    "Expect:" stops libcurl's 100-continue round trip for larger bodies.
    Chosen when pycurl imports (see main); it costs the runtime roughly a
    third of what http.client does per invoke (docs/benchmarks.md).
    """

    def __init__(self, address):
        import pycurl  # ImportError: the caller falls back to http.client

        super().__init__(address, stdlib=False)

        self._pycurl = pycurl
        self._base = "http://" + address
        c = self._curl = pycurl.Curl()
        c.setopt(pycurl.TCP_NODELAY, 1)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        c.setopt(pycurl.HEADERFUNCTION, self._on_header)
        self._chunks = []
        c.setopt(pycurl.WRITEFUNCTION, self._chunks.append)
        self._headers = {}
        self._header_lines = {}

    def close(self):
        self._curl.close()

    def _on_header(self, line):
        name, sep, value = line.partition(b":")
        if sep:
            self._headers[name.strip().lower().decode("latin-1")] = (
                value.strip().decode("utf-8", "replace"))

    def _lines(self, headers):
        """http.client-style header dict -> libcurl header lines (cached)."""
        key = id(headers)
        lines = self._header_lines.get(key)
        if lines is None or lines[0] is not headers:
            out = ["Expect:"]
            for k, v in headers.items():
                if k.lower() == "host":
                    continue
                if isinstance(v, bytes):
                    v = v.decode("latin-1")
                out.append("%s: %s" % (k, v))
            lines = (headers, out)
            if len(self._header_lines) < 16:
                self._header_lines[key] = lines
        return lines[1]

    def _roundtrip(self, method, url, body, headers):
        pycurl = self._pycurl
        c = self._curl
        for attempt in (0, 1):
            self._headers = {}
            del self._chunks[:]
            c.setopt(pycurl.URL, self._base + url)
            if method == "GET":
                c.setopt(pycurl.HTTPGET, 1)
            else:
                c.setopt(pycurl.POSTFIELDS, body or b"")
            c.setopt(pycurl.HTTPHEADER, self._lines(headers))
            try:
                c.perform()
            except pycurl.error as e:
                if attempt:
                    raise RuntimeAPIGone(
                        "Runtime API at %s: %s" % (self.address, e.args[-1])) from None
                continue
            return c.getinfo(pycurl.RESPONSE_CODE), self._headers, b"".join(self._chunks)

    def next_invocation(self):
        status, headers, body = self._roundtrip("GET", self._next_url, None,
                                                self._next_headers)
        if status != 200:
            raise RuntimeAPIGone(
                "GET /runtime/invocation/next returned %d: %r" % (status, body[:200]))
        return headers, body


def _latin1_to_utf8(value):
    return value.encode("latin-1", "replace").decode("utf-8", "replace")


def _header_safe(value):
    value = str(value).replace("\r", " ").replace("\n", " ")
    return value if value.isascii() else value.encode("ascii", "replace").decode()


def _write_stderr(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass


# ---------------------------------------------------------------------------
# JSON (un)marshalling
# ---------------------------------------------------------------------------

# awslambdaric encodes with simplejson(use_decimal=False) + a Decimal hook that
# emits the decimal's exact text as a raw number (NaN -> NaN).  The stdlib C
# encoder cannot emit raw text, so Decimals are encoded as unique marker
# strings and substituted afterwards; that costs nothing unless a Decimal is
# actually present.
_decimal_texts = []
_MARK = "\x00ignis-dec-%x-" % os.getpid()


def _json_default(o):
    dec = sys.modules.get("decimal")
    if dec is not None and isinstance(o, dec.Decimal):
        if o.is_nan():
            return float("nan")
        _decimal_texts.append(str(o))
        return "%s%d\x00" % (_MARK, len(_decimal_texts) - 1)
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


_encode_json = json.JSONEncoder(default=_json_default).encode
_decode_json = json.loads
_decode_json_str = json.JSONDecoder().decode  # skips loads()' encoding sniffing


def _substitute_decimals(text):
    import re  # already imported by json; only reached with Decimals

    pattern = re.escape(json.dumps(_MARK)[:-1]) + r'(\d+)\\u0000"'
    texts = list(_decimal_texts)
    return re.sub(pattern, lambda m: texts[int(m.group(1))], text)


def to_json(obj):
    try:
        text = _encode_json(obj)
        if _decimal_texts:
            text = _substitute_decimals(text)
        return text
    finally:
        _decimal_texts.clear()


def marshal_response(response):
    """Handler return value -> (payload bytes, content type)."""
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode(), "application/json"
    except Exception as e:
        raise FaultException(MARSHAL_ERROR, "Unable to marshal response: %s" % e)


def unmarshal_request(body, content_type):
    # awslambdaric passes non-JSON content types through as raw bytes.
    if content_type and not content_type.startswith("application/json"):
        return body
    try:
        return _decode_json_str(body.decode())
    except Exception:
        pass  # BOM/UTF-16/invalid: let json.loads decide (and word the error)
    try:
        return _decode_json(body)
    except Exception as e:
        raise FaultException(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)


# ---------------------------------------------------------------------------
# Context object (mirrors awslambdaric.lambda_context)
# ---------------------------------------------------------------------------

# Read from the environment by _load_environment() at main(), not at import:
# the zygote (zygote.py) imports this module once for every instance, before
# any function's environment exists.
_FUNCTION_NAME = _FUNCTION_VERSION = _LOG_GROUP_NAME = _LOG_STREAM_NAME = None
_MEMORY_SIZE = None  # NB: a *string*, exactly as awslambdaric (and AWS) provides it.

_W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")
_monotonic = time.monotonic
_time = time.time


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self, cognito_identity_id=None, cognito_identity_pool_id=None):
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name",
                 "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([%s])" % ",".join(
            "%s=%s" % (f, getattr(self, f)) for f in self.__slots__)


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (
            self.custom, self.env, self.client)


def _obj_from_dict(cls, d):
    if d is None:
        return None
    get = d.get if isinstance(d, dict) else (lambda _k: None)
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, get(field))
    return obj


class LambdaContext(object):
    """The `context` argument of the handler."""

    def __init__(self, invoke_id, client_context, cognito_identity,
                 epoch_deadline_time_in_ms, invoked_function_arn=None,
                 tenant_id=None):
        self.aws_request_id = invoke_id
        self.log_group_name = _LOG_GROUP_NAME
        self.log_stream_name = _LOG_STREAM_NAME
        self.function_name = _FUNCTION_NAME
        self.memory_limit_in_mb = _MEMORY_SIZE
        self.function_version = _FUNCTION_VERSION
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self._w3c_fields = {}
        if client_context is None:
            self.client_context = None
        else:
            if isinstance(client_context, dict) and "w3c" in client_context:
                raw = client_context.pop("w3c")
                if isinstance(raw, dict):
                    self._w3c_fields = {k: raw[k] for k in _W3C_ALLOWED_FIELDS
                                        if isinstance(raw.get(k), str)}
            cc = self.client_context = _obj_from_dict(ClientContext, client_context)
            cc.client = _obj_from_dict(Client, cc.client)

        if cognito_identity is None:
            self.identity = CognitoIdentity()
        else:
            get = cognito_identity.get if isinstance(cognito_identity, dict) \
                else (lambda _k: None)
            self.identity = CognitoIdentity(get("cognitoIdentityId"),
                                            get("cognitoIdentityPoolId"))

        # Deadline on the monotonic clock, so wall-clock steps can't skew it.
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms
        self._mono_deadline = _monotonic() + (
            epoch_deadline_time_in_ms / 1000.0 - _time())

    def get_remaining_time_in_millis(self):
        remaining = int((self._mono_deadline - _monotonic()) * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self):
        """W3C trace-context fields carried in the client context (if any)."""
        return dict(self._w3c_fields)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (self.aws_request_id, self.log_group_name, self.log_stream_name,
               self.function_name, self.memory_limit_in_mb, self.function_version,
               self.invoked_function_arn, self.client_context, self.identity,
               self.tenant_id)
        )


def _parse_json_header(value, name):
    try:
        return _decode_json(value)
    except Exception as e:
        raise FaultException(LAMBDA_CONTEXT_UNMARSHAL_ERROR,
                             "Unable to parse %s JSON: %s" % (name, e))


# ---------------------------------------------------------------------------
# Logging (mirrors awslambdaric's root-logger setup)
# ---------------------------------------------------------------------------

_current_request_id = None  # read by LambdaLoggerFilter for every record
_current_tenant_id = None

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TEXT_LOG_FORMAT = (
    "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
)
_LOG_FORMAT_JSON = False  # _load_environment()

# Record attributes that are not copied into JSON log lines as "extra" fields.
_RESERVED_LOG_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
    "taskName",
))


class LambdaLoggerFilter(logging.Filter):
    """Adds %(aws_request_id)s (and tenant_id) to every record."""

    def filter(self, record):
        record.aws_request_id = _current_request_id or ""
        record.tenant_id = _current_tenant_id
        return True


class LambdaLoggerHandler(logging.Handler):
    """Root-logger handler writing formatted records to (current) sys.stdout."""

    def emit(self, record):
        try:
            msg = self.format(record)
            if not msg.endswith("\n"):
                msg += "\n"
            sys.stdout.write(msg)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON log record format (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    def __init__(self):
        super().__init__(datefmt=_DATETIME_FORMAT)
        self._encode = json.JSONEncoder(ensure_ascii=False).encode

    def formatTime(self, record, datefmt=None):
        t = time.gmtime(record.created)
        return "%s.%03dZ" % (time.strftime(_DATETIME_FORMAT, t),
                             int(record.msecs))

    def format(self, record):
        levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelno = levelno
        record.levelname = logging.getLevelName(levelno)
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": ("%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
                         if exc_info else None),
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED_LOG_FIELDS and key not in result:
                result[key] = value
        return self._encode({k: v for k, v in result.items() if v is not None}) + "\n"


def _setup_logging():
    logging.Formatter.converter = time.gmtime  # awslambdaric does this globally
    root = logging.getLogger()
    handler = LambdaLoggerHandler()
    if _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_LOG_FORMAT, _DATETIME_FORMAT))
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level == "TRACE":
        level = "DEBUG"
    if level in logging._nameToLevel:
        root.setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


# ---------------------------------------------------------------------------
# Error documents and error logging
# ---------------------------------------------------------------------------


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """Traceback frames as 4-tuples, minus the leading frames of the runtime."""
    frames = [(f.filename, f.lineno, f.name, f.line)
              for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if os.path.dirname(frame[0]) != _RUNTIME_DIR:
            return frames[i:]
    return frames


def _error_from_exception(exc, invoke_id=None):
    """(error document, frames) for an exception raised by user code."""
    frames = _user_frames(exc.__traceback__)
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not take the runtime down
        message = "<exception str() failed>"
    # format_list on plain tuples: '  File "f", line n, in name\n    code\n'
    # (no 3.11 caret lines), which is the shape awslambdaric posts.
    error = make_error(message, type(exc).__name__,
                       traceback.format_list(frames), invoke_id)
    return error, frames


def _make_xray_cause(error_type, message, frames):
    stack = [{"label": name, "path": path, "line": line}
             for path, line, name, _ in frames]
    return to_json({
        "working_directory": os.getcwd(),
        "exceptions": [{"message": message, "type": error_type, "stack": stack}],
        "paths": list(dict.fromkeys(f[0] for f in frames)),
    })


def _indent_nbsp(line):
    stripped = line.lstrip(" ")
    return _ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped


def log_error(error):
    """Print an error document to stdout the way awslambdaric logs it."""
    if _LOG_FORMAT_JSON:
        text = to_json(dict(
            timestamp=time.strftime(_DATETIME_FORMAT, time.gmtime()),
            level="ERROR", **error)) + "\n"
    else:
        head = "[ERROR]"
        if error["errorType"]:
            head += " " + error["errorType"]
        if error["errorMessage"]:
            if error["errorType"]:
                head += ":"
            head += " " + error["errorMessage"]
        lines = [head, "Traceback (most recent call last):"]
        for element in error["stackTrace"]:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent_nbsp(l) for l in element.splitlines())
        text = "\n".join(lines) + "\n"
    try:
        sys.stdout.write(text)
    except Exception:
        pass


def _flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Init: locate and import the handler
# ---------------------------------------------------------------------------


def get_handler(handler):
    """Resolve _HANDLER ("mod.fn", "dir/mod.fn", "pkg.mod.fn") to a callable."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(MALFORMED_HANDLER_NAME,
                             "Bad handler '%s': %s" % (handler, e))

    if modname.split(".")[0] in sys.builtin_module_names:
        raise FaultException(
            BUILT_IN_MODULE_CONFLICT,
            "Cannot use built-in module %s as a handler module" % modname)
    try:
        import importlib
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(IMPORT_MODULE_ERROR,
                             "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '%s': %s" % (modname, e),
                             trace)
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(HANDLER_NOT_FOUND,
                             "Handler '%s' missing on module '%s'" % (fname, modname))


def _configure_streams():
    # Line-buffered stdout: one write(2) per line, prompt delivery to the
    # daemon; an explicit flush before each post catches partial lines.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if (stream.encoding or "").lower().replace("-", "") != "utf8":
                stream.reconfigure(encoding="utf-8", errors="backslashreplace")
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass


class _EndpointFromEnvironment(object):
    """Makes botocore clients honour AWS_ENDPOINT_URL(_<SERVICE>) where botocore predates
    it (< 1.31, e.g. Debian 12's), so that `boto3.client("s3")` without arguments reaches
    the Ignis that runs the function, as on Lambda it reaches AWS. A meta path finder that
    acts once, when botocore.session is imported: nothing is imported ahead for functions
    that never use boto3."""

    def find_spec(self, name, path=None, target=None):
        if name != "botocore.session":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        loader = spec and spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _patch_botocore_session(module)
        loader.exec_module = exec_module
        return spec


def _patch_botocore_session(session_module):
    import botocore
    try:
        if tuple(int(x) for x in botocore.__version__.split(".")[:2]) >= (1, 31):
            return  # botocore reads AWS_ENDPOINT_URL itself
    except ValueError:
        return
    create_client = session_module.Session.create_client

    def create_client_with_endpoint(self, service_name, *args, **kwargs):
        if len(args) < 5 and kwargs.get("endpoint_url") is None:  # endpoint_url is the 5th
            env = os.environ
            url = (env.get("AWS_ENDPOINT_URL_" + service_name.upper().replace("-", "_"))
                   or env.get("AWS_ENDPOINT_URL"))
            if url:
                kwargs["endpoint_url"] = url
        return create_client(self, service_name, *args, **kwargs)
    session_module.Session.create_client = create_client_with_endpoint


def _install_endpoint_hook():
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return
    module = sys.modules.get("botocore.session")
    if module is not None:
        _patch_botocore_session(module)
    else:
        sys.meta_path.insert(0, _EndpointFromEnvironment())


def _script_dir():
    """The runtime's directory as started (a zygote loaded this module from the host's)."""
    return os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else None


def _fatal(message):
    _write_stderr("[ERROR] ignis python runtime: %s\n" % message)
    _flush_output()
    os._exit(1)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def _load_environment():
    global _FUNCTION_NAME, _FUNCTION_VERSION, _MEMORY_SIZE, _LOG_GROUP_NAME
    global _LOG_STREAM_NAME, _LOG_FORMAT_JSON
    env = os.environ
    _FUNCTION_NAME = env.get("AWS_LAMBDA_FUNCTION_NAME")
    _FUNCTION_VERSION = env.get("AWS_LAMBDA_FUNCTION_VERSION")
    _MEMORY_SIZE = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    _LOG_GROUP_NAME = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
    _LOG_STREAM_NAME = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
    _LOG_FORMAT_JSON = (env.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


def preload():
    """What main() would import lazily, for the zygote to load once."""
    try:
        import pycurl  # noqa: F401
    except ImportError:
        import http.client  # noqa: F401
    import importlib  # noqa: F401


def main():
    global _current_request_id, _current_tenant_id

    _load_environment()

    _configure_streams()

    api_address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api_address:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    host, sep, port = api_address.rpartition(":")
    if not sep or not host or not port.isdigit():
        _fatal("bad AWS_LAMBDA_RUNTIME_API %r" % api_address)
    # The client is made before the function's code is on sys.path, so a
    # module of the function's can never stand in for the runtime's own.
    try:
        client = CurlRuntimeAPIClient(api_address)
    except ImportError:  # no python3-pycurl: the standard library's client
        client = RuntimeAPIClient(api_address)

    # sys.path[0] is the runtime's directory; the function code replaces it
    # (the runtime's own files are not importable by user code).
    if sys.path and os.path.abspath(sys.path[0] or ".") in (_RUNTIME_DIR, _script_dir()):
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)
    _setup_logging()
    _install_endpoint_hook()

    # ---- init ----------------------------------------------------------
    try:
        request_handler = get_handler(os.environ.get("_HANDLER", ""))
    except FaultException as e:
        init_error = make_error(e.msg, e.exception_type, e.trace)
    except Exception as e:
        init_error, _ = _error_from_exception(e)
    else:
        init_error = None
    if init_error is not None:
        log_error(init_error)
        _flush_output()
        try:
            client.post_init_error(to_json(init_error), init_error["errorType"])
        except RuntimeAPIGone as e:
            _write_stderr("[ERROR] ignis python runtime: %s\n" % e)
        _flush_output()
        os._exit(1)  # not sys.exit: user threads started at import must not keep us alive

    # ---- invoke loop (hot path: keep it lean) ----------------------------
    environ = os.environ
    next_invocation = client.next_invocation
    post_result = client.post_invocation_result
    post_error = client.post_invocation_error
    trace_set = "_X_AMZN_TRACE_ID" in environ

    try:
        while True:
            headers, body = next_invocation()
            get = headers.get
            invoke_id = get("lambda-runtime-aws-request-id", "")
            _current_request_id = invoke_id
            tenant_id = _current_tenant_id = get("lambda-runtime-aws-tenant-id")

            trace_id = get("lambda-runtime-trace-id")
            if trace_id:
                environ["_X_AMZN_TRACE_ID"] = trace_id
                trace_set = True
            elif trace_set:
                environ.pop("_X_AMZN_TRACE_ID", None)
                trace_set = False

            try:
                client_context = get("lambda-runtime-client-context")
                if client_context:
                    client_context = _parse_json_header(client_context, "Client Context")
                else:
                    client_context = None
                cognito = get("lambda-runtime-cognito-identity")
                if cognito:
                    cognito = _parse_json_header(cognito, "Cognito Identity")
                else:
                    cognito = None
                try:
                    deadline_ms = int(get("lambda-runtime-deadline-ms"))
                except (TypeError, ValueError):
                    deadline_ms = 0
                context = LambdaContext(
                    invoke_id, client_context, cognito, deadline_ms,
                    get("lambda-runtime-invoked-function-arn"), tenant_id)
                event = unmarshal_request(body, get("content-type"))
                response = request_handler(event, context)
                payload, content_type = marshal_response(response)
            except FaultException as e:
                error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
                xray = _make_xray_cause("LambdaValidationError", e.msg, [])
            except Exception as e:
                error, frames = _error_from_exception(e, invoke_id)
                xray = _make_xray_cause(error["errorType"], error["errorMessage"], frames)
            else:
                try:  # (sys.stdout may have been replaced by user code)
                    sys.stdout.flush()
                    sys.stderr.flush()
                except Exception:
                    _flush_output()
                post_result(invoke_id, payload, content_type)
                continue

            log_error(error)
            _flush_output()
            post_error(invoke_id, to_json(error), error["errorType"], xray)
    except RuntimeAPIGone as e:
        _fatal(str(e))

