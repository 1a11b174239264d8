"""API Gateway HTTP APIs: the apigatewayv2 control plane (the aws CLI and
boto3) and the APIs on the edge port called with raw HTTP (http.client) in
the Host form (<api-id>.execute-api.<region>.localhost:<port>) and the path
form (/_ignis/api/<api-id>/...): route selection, payload format 2.0 and 1.0
events and responses, API Gateway's own errors, CORS (preflights answered by
the gateway, headers on answers), paging of the Get* lists, persistence.
"""
import base64
import http.client
import json
import re

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, ROLE, code, make_zip, unique

ECHO = code('''
import base64, json
def handler(event, context):
    path = event.get("rawPath") or event.get("path")
    if path.endswith("/error"):
        raise ValueError("boom")
    if path.endswith("/notresponse"):
        return "just a string"
    if path.endswith("/binary"):
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path.endswith("/cors"):
        return {"statusCode": 200, "body": "own cors",
                "headers": {"Access-Control-Allow-Origin": "https://evil.example",
                            "Access-Control-Allow-Methods": "PUT", "X-Kept": "yes"}}
    if path.endswith("/multi"):
        return {"statusCode": 202, "headers": {"X-One": "1", "X-Both": "h"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["m1", "m2"]},
                "body": "multi"}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}
''')


def call(port, api_id, method="GET", path="/", body=None, headers=None, form="host"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    if form == "host":
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", f"{api_id}.execute-api.{REGION}.localhost:{port}")
    else:
        conn.putrequest(method, f"/_ignis/api/{api_id}{path}")
    for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    out = (r.status, r.getheaders(), r.read())
    conn.close()
    return out


def hdrs(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def event_of(resp):
    assert resp[0] == 200, resp
    return json.loads(resp[2])


@pytest.fixture
def gw(server):
    return server.client("apigatewayv2")


@pytest.fixture
def echo_arn(lam, create_function):
    name = create_function({"app.py": ECHO})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


@pytest.fixture
def explicit(gw, echo_arn):
    """An API with a 2.0 and a 1.0 integration and routes for both."""
    api = gw.create_api(Name=unique("api"), ProtocolType="HTTP")
    aid = api["ApiId"]
    v2 = gw.create_integration(ApiId=aid, IntegrationType="AWS_PROXY", IntegrationUri=echo_arn,
                               PayloadFormatVersion="2.0")
    v1 = gw.create_integration(ApiId=aid, IntegrationType="AWS_PROXY", IntegrationUri=echo_arn,
                               PayloadFormatVersion="1.0")
    t2, t1 = "integrations/" + v2["IntegrationId"], "integrations/" + v1["IntegrationId"]
    for key, target in [("GET /items/{id}", t2), ("GET /items/special", t2), ("ANY /{proxy+}", t2),
                        ("$default", t2), ("POST /items/{id}", t2), ("GET /v1/{name}", t1),
                        ("ANY /v1/files/{rest+}", t1)]:
        gw.create_route(ApiId=aid, RouteKey=key, Target=target)
    gw.create_stage(ApiId=aid, StageName="$default", AutoDeploy=True)
    yield aid
    try:
        gw.delete_api(ApiId=aid)
    except ClientError:
        pass


def test_quick_create_cli(server, echo_arn):
    api = server.aws("apigatewayv2", "create-api", "--name", unique("qc"), "--protocol-type", "HTTP",
                     "--target", echo_arn)
    aid = api["ApiId"]
    assert re.fullmatch(r"[a-z0-9]{10}", aid)
    assert api["ApiEndpoint"] == f"http://{aid}.execute-api.{REGION}.localhost:{server.port}"
    assert api["ProtocolType"] == "HTTP"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"
    routes = server.aws("apigatewayv2", "get-routes", "--api-id", aid)["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"]
    integ = server.aws("apigatewayv2", "get-integrations", "--api-id", aid)["Items"]
    assert integ[0]["IntegrationType"] == "AWS_PROXY" and integ[0]["IntegrationUri"] == echo_arn
    assert integ[0]["PayloadFormatVersion"] == "2.0"
    assert routes[0]["Target"] == "integrations/" + integ[0]["IntegrationId"]
    stage = server.aws("apigatewayv2", "get-stage", "--api-id", aid, "--stage-name", "$default")
    assert stage["AutoDeploy"] is True

    for form in ("host", "path"):
        ev = event_of(call(server.port, aid, path="/hello/world?x=1", form=form))
        assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
        assert ev["rawPath"] == "/hello/world" and ev["rawQueryString"] == "x=1"
        rc = ev["requestContext"]
        assert rc["apiId"] == aid and rc["stage"] == "$default" and rc["routeKey"] == "$default"
        assert rc["domainName"] == f"{aid}.execute-api.{REGION}.localhost"
        assert rc["domainPrefix"] == aid and rc["http"]["method"] == "GET"
        assert rc["http"]["path"] == "/hello/world" and isinstance(rc["timeEpoch"], int)
    server.aws("apigatewayv2", "delete-api", "--api-id", aid)
    assert call(server.port, aid)[0] == 404


def test_control_plane_errors(gw, server):
    with pytest.raises(ClientError) as e:
        gw.get_api(ApiId="nope123456")
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        gw.create_api(Name="ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.a")
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    assert "WEBSOCKET" in e.value.response["Error"]["Message"]
    aid = gw.create_api(Name=unique("api"), ProtocolType="HTTP")["ApiId"]
    with pytest.raises(ClientError) as e:
        gw.create_integration(ApiId=aid, IntegrationType="HTTP_PROXY", IntegrationUri="https://x",
                              IntegrationMethod="ANY", PayloadFormatVersion="1.0")
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    gw.create_route(ApiId=aid, RouteKey="GET /a")
    with pytest.raises(ClientError) as e:
        gw.create_route(ApiId=aid, RouteKey="GET /a")
    assert e.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as e:
        gw.create_route(ApiId=aid, RouteKey="FETCH /a")
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as e:
        gw.get_route(ApiId=aid, RouteId="zzzzzzz")
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert any(a["ApiId"] == aid for a in gw.get_apis()["Items"])
    assert gw.update_api(ApiId=aid, Name="renamed")["Name"] == "renamed"
    gw.delete_api(ApiId=aid)
    assert not any(a["ApiId"] == aid for a in gw.get_apis()["Items"])


def test_routes_and_crud(gw, explicit, echo_arn):
    routes = gw.get_routes(ApiId=explicit)["Items"]
    r = next(r for r in routes if r["RouteKey"] == "GET /items/special")
    assert gw.get_route(ApiId=explicit, RouteId=r["RouteId"])["RouteKey"] == "GET /items/special"
    u = gw.update_route(ApiId=explicit, RouteId=r["RouteId"], RouteKey="GET /items/extra")
    assert u["RouteKey"] == "GET /items/extra" and u["Target"] == r["Target"]
    gw.delete_route(ApiId=explicit, RouteId=r["RouteId"])
    assert len(gw.get_routes(ApiId=explicit)["Items"]) == len(routes) - 1
    i = gw.get_integrations(ApiId=explicit)["Items"][0]
    u = gw.update_integration(ApiId=explicit, IntegrationId=i["IntegrationId"], TimeoutInMillis=5000)
    assert u["TimeoutInMillis"] == 5000 and u["IntegrationUri"] == echo_arn


def test_route_precedence_and_path_parameters(server, explicit):
    p = server.port
    ev = event_of(call(p, explicit, path="/items/special"))
    assert ev["routeKey"] == "GET /items/special" and "pathParameters" not in ev
    ev = event_of(call(p, explicit, path="/items/a%20b"))
    assert ev["routeKey"] == "GET /items/{id}" and ev["pathParameters"] == {"id": "a b"}
    ev = event_of(call(p, explicit, "POST", path="/items/7", body=b"{}",
                       headers={"Content-Type": "application/json"}))
    assert ev["routeKey"] == "POST /items/{id}" and ev["body"] == "{}"
    ev = event_of(call(p, explicit, "DELETE", path="/items/7"))
    assert ev["routeKey"] == "ANY /{proxy+}" and ev["pathParameters"] == {"proxy": "items/7"}
    ev = event_of(call(p, explicit, path="/a/b/c", form="path"))
    assert ev["routeKey"] == "ANY /{proxy+}" and ev["pathParameters"] == {"proxy": "a/b/c"}
    ev = event_of(call(p, explicit, path="/"))
    assert ev["routeKey"] == "$default"


def test_v2_query_cookies_binary(server, explicit):
    p = server.port
    ev = event_of(call(p, explicit, path="/items/1?a=1&a=2&b=x%20y",
                       headers=[("Cookie", "c1=v1; c2=v2"), ("X-Rep", "1"), ("X-Rep", "2")]))
    assert ev["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert ev["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in ev["headers"]
    assert ev["headers"]["x-rep"] == "1,2"
    data = bytes(range(256))
    ev = event_of(call(p, explicit, "POST", path="/items/1", body=data,
                       headers={"Content-Type": "application/octet-stream"}))
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == data
    st, h, body = call(p, explicit, path="/x/binary")
    assert st == 200 and body == data and hdrs(h, "apigw-requestid")


def test_v1_event_and_response(server, explicit):
    p = server.port
    ev = event_of(call(p, explicit, path="/v1/joe?a=1&a=2&b=3",
                       headers=[("Cookie", "c=1"), ("X-Rep", "1"), ("X-Rep", "2")]))
    assert ev["version"] == "1.0" and ev["resource"] == "/v1/{name}" and ev["path"] == "/v1/joe"
    assert ev["httpMethod"] == "GET" and ev["pathParameters"] == {"name": "joe"}
    assert ev["queryStringParameters"] == {"a": "2", "b": "3"}
    assert ev["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert ev["multiValueHeaders"]["x-rep"] == ["1", "2"] and ev["headers"]["x-rep"] == "2"
    assert ev["headers"]["cookie"] == "c=1"
    assert ev["stageVariables"] is None and ev["body"] is None and ev["isBase64Encoded"] is False
    rc = ev["requestContext"]
    assert rc["httpMethod"] == "GET" and rc["resourcePath"] == "/v1/{name}" and rc["stage"] == "$default"
    assert rc["apiId"] == explicit and rc["identity"]["sourceIp"] == "127.0.0.1"
    assert isinstance(rc["requestTimeEpoch"], int)
    ev = event_of(call(p, explicit, "PUT", path="/v1/files/a/b", body=b"\x00\xff",
                       headers={"Content-Type": "image/png"}))
    assert ev["pathParameters"] == {"rest": "a/b"} and ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == b"\x00\xff"
    assert ev["queryStringParameters"] is None
    st, h, body = call(p, explicit, path="/v1/files/multi")
    assert st == 202 and body == b"multi"
    assert hdrs(h, "Set-Cookie") == ["a=1", "b=2"] and hdrs(h, "X-One") == ["1"]
    assert hdrs(h, "X-Both") == ["m1", "m2"]
    # 1.0 does not infer: a result without statusCode is an error
    st, _, body = call(p, explicit, path="/v1/files/notresponse")
    assert st == 500 and json.loads(body) == {"message": "Internal Server Error"}


def test_gateway_errors(server, gw, explicit):
    p = server.port
    st, _, body = call(p, explicit, path="/x/error")
    assert st == 500 and json.loads(body) == {"message": "Internal Server Error"}
    # 2.0 infers: a plain string becomes a 200
    st, _, body = call(p, explicit, path="/x/notresponse")
    assert st == 200 and body == b"just a string"
    assert call(p, "zzzzzzzzzz")[0] == 404
    # no route: delete $default and {proxy+}
    for r in gw.get_routes(ApiId=explicit)["Items"]:
        if r["RouteKey"] in ("$default", "ANY /{proxy+}"):
            gw.delete_route(ApiId=explicit, RouteId=r["RouteId"])
    st, h, body = call(p, explicit, path="/nothing/here")
    assert st == 404 and json.loads(body) == {"message": "Not Found"}
    assert call(p, explicit, "DELETE", path="/items/1")[0] == 404


def test_missing_function_is_500(server, gw):
    arn = f"arn:aws:lambda:{REGION}:000000000000:function:{unique('gone')}"
    aid = gw.create_api(Name=unique("api"), ProtocolType="HTTP", Target=arn)["ApiId"]
    st, _, body = call(server.port, aid, path="/")
    assert st == 500 and json.loads(body) == {"message": "Internal Server Error"}
    gw.delete_api(ApiId=aid)


def test_named_stage_prefix(server, gw, echo_arn):
    aid = gw.create_api(Name=unique("api"), ProtocolType="HTTP")["ApiId"]
    i = gw.create_integration(ApiId=aid, IntegrationType="AWS_PROXY", IntegrationUri=echo_arn,
                              PayloadFormatVersion="2.0")
    gw.create_route(ApiId=aid, RouteKey="GET /items", Target="integrations/" + i["IntegrationId"])
    assert call(server.port, aid, path="/items")[0] == 404  # no stage yet
    gw.create_stage(ApiId=aid, StageName="prod", StageVariables={"color": "blue"})
    ev = event_of(call(server.port, aid, path="/prod/items"))
    assert ev["requestContext"]["stage"] == "prod" and ev["rawPath"] == "/prod/items"
    assert ev["stageVariables"] == {"color": "blue"}
    gw.delete_stage(ApiId=aid, StageName="prod")
    assert call(server.port, aid, path="/prod/items")[0] == 404
    gw.delete_api(ApiId=aid)


def test_survives_restart(fresh_server):
    s = fresh_server
    lam = s.client("lambda")
    name = unique()
    fn = lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                             Code={"ZipFile": make_zip({"app.py": ECHO})})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    gw = s.client("apigatewayv2")
    aid = gw.create_api(Name="keep", ProtocolType="HTTP", Target=fn["FunctionArn"],
                        RouteKey="GET /items/{id}")["ApiId"]
    assert event_of(call(s.port, aid, path="/items/1"))["pathParameters"] == {"id": "1"}
    s.restart()
    gw = s.client("apigatewayv2")
    assert gw.get_api(ApiId=aid)["Name"] == "keep"
    assert [r["RouteKey"] for r in gw.get_routes(ApiId=aid)["Items"]] == ["GET /items/{id}"]
    assert event_of(call(s.port, aid, path="/items/2"))["pathParameters"] == {"id": "2"}
    gw.delete_api(ApiId=aid)
    s.restart()
    assert call(s.port, aid, path="/items/2")[0] == 404
    with pytest.raises(ClientError):
        s.client("apigatewayv2").get_api(ApiId=aid)


APP = "https://app.example"
CORS = {"AllowOrigins": [APP], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["content-type", "x-custom"], "ExposeHeaders": ["x-exposed", "date"],
        "MaxAge": 300, "AllowCredentials": True}


def preflight(port, api_id, path, origin, method="GET"):
    return call(port, api_id, "OPTIONS", path=path,
                headers={"Origin": origin, "Access-Control-Request-Method": method,
                         "Access-Control-Request-Headers": "content-type"})


def test_cors_preflight(server, gw, explicit, echo_arn):
    p = server.port
    # not configured: an OPTIONS goes to the routes (ANY /{proxy+} here)
    assert event_of(preflight(p, explicit, "/items/1", APP))["requestContext"]["http"]["method"] \
        == "OPTIONS"
    gw.update_api(ApiId=explicit, CorsConfiguration=CORS)
    assert gw.get_api(ApiId=explicit)["CorsConfiguration"] == CORS
    st, h, body = preflight(p, explicit, "/items/1", APP)
    assert st == 204 and body == b"", (st, h, body)
    assert hdrs(h, "Access-Control-Allow-Origin") == [APP]
    assert hdrs(h, "Access-Control-Allow-Methods") == ["GET,POST"]
    assert hdrs(h, "Access-Control-Allow-Headers") == ["content-type,x-custom"]
    assert hdrs(h, "Access-Control-Expose-Headers") == ["x-exposed,date"]
    assert hdrs(h, "Access-Control-Allow-Credentials") == ["true"]
    assert hdrs(h, "Access-Control-Max-Age") == ["300"]
    assert hdrs(h, "apigw-requestid")
    assert preflight(p, explicit, "/v1/x", APP, "POST")[0] == 204  # no POST route there
    # a denied origin or method: 204 without any CORS header, still no invoke
    for origin, method in [("https://other.example", "GET"), (APP, "DELETE")]:
        st, h, body = preflight(p, explicit, "/items/1", origin, method)
        assert st == 204 and body == b""
        assert not [k for k, _ in h if k.lower().startswith("access-control-")], h
    # an OPTIONS that is no preflight still reaches the function
    st, _, body = call(p, explicit, "OPTIONS", path="/items/1", headers={"Origin": APP})
    assert st == 200 and json.loads(body)["requestContext"]["http"]["method"] == "OPTIONS"


def test_cors_preflight_without_options_route(server, gw, echo_arn):
    aid = gw.create_api(Name=unique("api"), ProtocolType="HTTP", Target=echo_arn,
                        RouteKey="GET /only")["ApiId"]
    assert preflight(server.port, aid, "/only", APP)[0] == 404  # no CORS, no OPTIONS route
    gw.update_api(ApiId=aid, CorsConfiguration={"AllowOrigins": ["*"], "AllowMethods": ["*"]})
    st, h, _ = preflight(server.port, aid, "/only", "https://any.example", "PATCH")
    assert st == 204
    assert hdrs(h, "Access-Control-Allow-Origin") == ["*"]
    assert hdrs(h, "Access-Control-Allow-Methods") == ["*"]
    assert not hdrs(h, "Access-Control-Allow-Credentials")
    st, h, _ = call(server.port, aid, path="/only", headers={"Origin": "https://any.example"})
    assert st == 200 and hdrs(h, "Access-Control-Allow-Origin") == ["*"]
    gw.delete_api(ApiId=aid)


def test_cors_on_answers(server, gw, explicit):
    p = server.port
    gw.update_api(ApiId=explicit, CorsConfiguration=CORS)
    st, h, _ = call(p, explicit, path="/items/1", headers={"Origin": APP})
    assert st == 200
    assert hdrs(h, "Access-Control-Allow-Origin") == [APP]
    assert hdrs(h, "Access-Control-Allow-Credentials") == ["true"]
    assert hdrs(h, "Access-Control-Expose-Headers") == ["x-exposed,date"]
    assert not hdrs(h, "Access-Control-Allow-Methods")  # preflight only
    st, h, _ = call(p, explicit, path="/items/1", headers={"Origin": "https://other.example"})
    assert st == 200 and not hdrs(h, "Access-Control-Allow-Origin")
    st, h, _ = call(p, explicit, path="/items/1")
    assert st == 200 and not hdrs(h, "Access-Control-Allow-Origin")


def test_cors_replaces_integration_headers(server, gw, explicit):
    p = server.port
    st, h, _ = call(p, explicit, path="/x/cors", headers={"Origin": APP})
    assert hdrs(h, "Access-Control-Allow-Origin") == ["https://evil.example"]  # not configured
    gw.update_api(ApiId=explicit, CorsConfiguration=CORS)
    st, h, body = call(p, explicit, path="/x/cors", headers={"Origin": APP})
    assert st == 200 and body == b"own cors"
    assert hdrs(h, "Access-Control-Allow-Origin") == [APP]
    assert not hdrs(h, "Access-Control-Allow-Methods")
    assert hdrs(h, "X-Kept") == ["yes"]
    # a denied origin: the integration's CORS headers are ignored all the same
    st, h, _ = call(p, explicit, path="/x/cors", headers={"Origin": "https://evil.example"})
    assert not [k for k, _ in h if k.lower().startswith("access-control-")], h


def test_cors_configuration_checked(server, explicit):
    raw = boto3.client("apigatewayv2", endpoint_url=server.url, region_name=REGION,
                       aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                       config=Config(parameter_validation=False, retries={"max_attempts": 0}))
    for bad in [{"MaxAge": 86401}, {"MaxAge": -2}, {"AllowCredentials": "yes"}]:
        with pytest.raises(ClientError) as e:
            raw.update_api(ApiId=explicit, CorsConfiguration=bad)
        assert e.value.response["Error"]["Code"] == "BadRequestException"


def collect(gw, op, **kw):
    pages = list(gw.get_paginator(op).paginate(PaginationConfig={"PageSize": 1}, **kw))
    assert all(len(pg["Items"]) <= 1 for pg in pages)
    assert all("NextToken" in pg for pg in pages[:-1]) and "NextToken" not in pages[-1]
    return [item for pg in pages for item in pg["Items"]]


def test_paging(gw, explicit, echo_arn):
    gw.create_stage(ApiId=explicit, StageName="beta")
    gw.create_stage(ApiId=explicit, StageName="alpha")
    for op, key in [("get_routes", "RouteId"), ("get_integrations", "IntegrationId"),
                    ("get_stages", "StageName")]:
        everything = getattr(gw, op)(ApiId=explicit)
        assert "NextToken" not in everything
        ids = [i[key] for i in everything["Items"]]
        assert ids == sorted(ids)  # a stable order
        assert [i[key] for i in collect(gw, op, ApiId=explicit)] == ids
    assert len(gw.get_routes(ApiId=explicit)["Items"]) == 7
    assert [s["StageName"] for s in gw.get_stages(ApiId=explicit)["Items"]] == \
        ["$default", "alpha", "beta"]
    # by hand, with maxResults=2 and NextToken
    seen, token = [], None
    while True:
        page = gw.get_routes(ApiId=explicit, MaxResults="2", **({"NextToken": token} if token else {}))
        assert len(page["Items"]) <= 2
        seen += [r["RouteId"] for r in page["Items"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [r["RouteId"] for r in gw.get_routes(ApiId=explicit)["Items"]]
    # GetApis: every API once, ours among them
    apis = [a["ApiId"] for a in collect(gw, "get_apis")]
    assert explicit in apis and len(apis) == len(set(apis)) == len(gw.get_apis()["Items"])
    for bad in [{"MaxResults": "0"}, {"MaxResults": "x"}, {"NextToken": "!!"}]:
        with pytest.raises(ClientError) as e:
            gw.get_stages(ApiId=explicit, **bad)
        assert e.value.response["Error"]["Code"] == "BadRequestException"
