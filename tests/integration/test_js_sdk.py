"""The AWS SDK for JavaScript v3 (pinned in tests/js, installed from npm by
scripts/install-deps.sh) against a real daemon."""
import os
import subprocess

from conftest import ACCESS_KEY, REPO, SECRET_KEY, make_zip

JS_DIR = os.path.join(REPO, "tests", "js")


def test_lambda_through_js_sdk_v3(server, tmp_path):
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-lambda")), \
        "run scripts/install-deps.sh (it installs tests/js from npm)"
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(make_zip({"index.mjs":
        "export const handler = async (e, ctx) => "
        "({ got: e, from: process.env.FROM, arn: ctx.invokedFunctionArn });\n"}))
    p = subprocess.run(["node", "lambda_sdk.mjs", server.url, ACCESS_KEY, SECRET_KEY,
                        str(zip_path)], cwd=JS_DIR, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NODE_NO_WARNINGS="1"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "js sdk: ok" in p.stdout
