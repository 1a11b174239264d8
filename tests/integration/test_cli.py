"""The `ignis` client commands (deploy, invoke, logs, ls) against a real daemon,
as a person would use them: they sign with the credentials in the environment
or, on the server's machine, with the server's credentials file."""
import json
import os
import select
import subprocess
import time

from conftest import ACCESS_KEY, IGNIS_BIN, SECRET_KEY, Server, unique


def ignis(server, *args, env=None, check=True, timeout=60):
    e = dict(os.environ)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "IGNIS_ROOT_ACCESS_KEY_ID",
              "IGNIS_ROOT_SECRET_ACCESS_KEY", "IGNIS_LISTEN"):
        e.pop(k, None)
    e.update(IGNIS_ENDPOINT=server.url, AWS_ACCESS_KEY_ID=ACCESS_KEY,
             AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    e.update(env or {})
    p = subprocess.run([IGNIS_BIN, *args], capture_output=True, text=True, env=e,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"ignis {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def write_function(tmp_path, source, name="app.py"):
    d = tmp_path / "fn"
    d.mkdir(exist_ok=True)
    (d / name).write_text(source)
    return str(d)


def test_deploy_invoke_logs_ls(server, lam, tmp_path):
    name = unique("cli")
    src = write_function(tmp_path, "def handler(event, context):\n"
                                   "    print('cli says', event['who'])\n"
                                   "    return {'hello': event['who']}\n")
    out = ignis(server, "deploy", src, "--name", name, "--runtime", "python3.12",
                "--handler", "app.handler", "--memory", "256", "--timeout", "5",
                "--env", "GREETING=hi").stdout
    assert f"created arn:aws:lambda:us-east-1:000000000000:function:{name}" in out
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["MemorySize"] == 256 and conf["Timeout"] == 5
    assert conf["Environment"]["Variables"] == {"GREETING": "hi"}

    p = ignis(server, "invoke", name, '{"who": "ignis"}', "--tail")
    assert json.loads(p.stdout) == {"hello": "ignis"}
    assert "START RequestId:" in p.stderr and "cli says ignis" in p.stderr
    assert "REPORT RequestId:" in p.stderr

    logs = ignis(server, "logs", name).stdout
    assert "cli says ignis" in logs and "END RequestId:" in logs
    assert f"[$LATEST]" in logs

    listing = ignis(server, "ls").stdout.splitlines()
    assert listing[0].split()[:2] == ["NAME", "RUNTIME"]
    row = [line for line in listing if line.split()[0] == name]
    assert row and "python3.12" in row[0] and "256 MB" in row[0]

    # deploy again: the code and configuration are updated in place
    write_function(tmp_path, "def handler(event, context):\n    return 'v2'\n")
    out = ignis(server, "deploy", src, "--name", name, "--timeout", "7").stdout
    assert "updated" in out
    assert json.loads(ignis(server, "invoke", name).stdout) == "v2"
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 7
    lam.delete_function(FunctionName=name)


def test_invoke_function_error_exits_nonzero(server, lam, tmp_path):
    name = unique("cli")
    src = write_function(tmp_path, "def handler(event, context):\n    raise ValueError('boom')\n")
    ignis(server, "deploy", src, "--name", name, "--runtime", "python3.12",
          "--handler", "app.handler")
    p = ignis(server, "invoke", name, check=False)
    assert p.returncode == 1
    assert json.loads(p.stdout)["errorType"] == "ValueError"
    lam.delete_function(FunctionName=name)


def test_logs_follow_shows_new_lines(server, lam, tmp_path):
    name = unique("cli")
    src = write_function(tmp_path, "def handler(event, context):\n"
                                   "    print('line', event['n'])\n    return 1\n")
    ignis(server, "deploy", src, "--name", name, "--runtime", "python3.12",
          "--handler", "app.handler")
    e = dict(os.environ, IGNIS_ENDPOINT=server.url, AWS_ACCESS_KEY_ID=ACCESS_KEY,
             AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    follower = subprocess.Popen([IGNIS_BIN, "logs", name, "--follow"], env=e,
                                stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        ignis(server, "invoke", name, '{"n": 4242}')
        deadline = time.time() + 10
        seen = b""
        while time.time() < deadline and b"line 4242" not in seen:
            ready, _, _ = select.select([follower.stdout], [], [], 0.2)
            if ready:
                seen += os.read(follower.stdout.fileno(), 65536)
        assert b"line 4242" in seen
        assert follower.poll() is None, "--follow must keep running"
    finally:
        follower.kill()
        follower.wait()
    lam.delete_function(FunctionName=name)


def test_errors_are_reported(server, tmp_path):
    p = ignis(server, "invoke", "no-such-function", check=False)
    assert p.returncode == 1 and "ResourceNotFoundException" in p.stderr
    p = ignis(server, "ls", env={"AWS_SECRET_ACCESS_KEY": "wrong"}, check=False)
    assert p.returncode == 1 and "InvalidSignatureException" in p.stderr
    p = ignis(server, "deploy", str(tmp_path / "missing"), "--name", "x", "--runtime",
              "python3.12", "--handler", "app.handler", check=False)
    assert p.returncode != 0
    p = ignis(Server(str(tmp_path / "nothing"), port=1), "ls", check=False)
    assert p.returncode == 1 and "cannot reach" in p.stderr


def test_uses_the_servers_credentials_file(fresh_server, tmp_path):
    """With no credentials in the environment, a client on the server's
    machine signs with <data dir>/credentials (written at first start)."""
    s = Server(str(tmp_path / "gen"))
    s.extra_env = {"IGNIS_ROOT_ACCESS_KEY_ID": "", "IGNIS_ROOT_SECRET_ACCESS_KEY": ""}
    s.start()
    try:
        creds = open(os.path.join(s.data_dir, "credentials")).read()
        assert "aws_access_key_id = AKIA" in creds
        assert oct(os.stat(os.path.join(s.data_dir, "credentials")).st_mode & 0o777) == "0o600"
        e = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "IGNIS_DATA_DIR": s.data_dir}
        p = ignis(s, "ls", env=e)
        assert p.stdout.startswith("NAME")
        assert "generated root credentials" in s.read_log()
    finally:
        s.stop()


def test_serve_settings_from_the_environment(tmp_path):
    """ignis serve reads IGNIS_LISTEN, IGNIS_DATA_DIR, IGNIS_REGION and
    IGNIS_ACCOUNT_ID when no flags are given; ARNs carry region and account;
    generated credentials are printed on the first start only; SIGINT stops
    it cleanly."""
    import signal
    import socket

    from conftest import free_port, make_zip, ROLE
    import boto3
    import botocore.config

    port, data = free_port(), tmp_path / "envdata"
    env = dict(os.environ, IGNIS_LISTEN=f"127.0.0.1:{port}", IGNIS_DATA_DIR=str(data),
               IGNIS_REGION="eu-west-3", IGNIS_ACCOUNT_ID="123456789012",
               IGNIS_ROOT_ACCESS_KEY_ID="", IGNIS_ROOT_SECRET_ACCESS_KEY="")

    def start():
        p = subprocess.Popen([IGNIS_BIN, "serve"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return p
            except OSError:
                time.sleep(0.05)
        p.kill()
        raise AssertionError(p.communicate()[0])

    def stop(p):
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0, out
        return out

    p = start()
    creds = dict(line.split(" = ") for line in
                 (data / "credentials").read_text().splitlines() if " = " in line)
    lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                       region_name="eu-west-3", aws_access_key_id=creds["aws_access_key_id"],
                       aws_secret_access_key=creds["aws_secret_access_key"],
                       config=botocore.config.Config(retries={"max_attempts": 0}))
    r = lam.create_function(FunctionName="envfn", Runtime="python3.12", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return c.invoked_function_arn\n"})})
    assert r["FunctionArn"] == "arn:aws:lambda:eu-west-3:123456789012:function:envfn"
    assert json.loads(lam.invoke(FunctionName="envfn")["Payload"].read()) == r["FunctionArn"]
    first = stop(p)
    assert "generated root credentials" in first and creds["aws_access_key_id"] in first

    second = stop(start())
    assert "generated root credentials" not in second
    assert creds["aws_secret_access_key"] not in second
