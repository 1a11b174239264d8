"""The thumbnail pipeline of issue 6, end to end: the classic Lambda example runs unchanged
(only bucket names differ): `aws s3 cp` of a real JPEG into a bucket whose notification
configuration names the function; S3 invokes it asynchronously with its event record; the
function, with boto3 clients made without arguments and Debian's python3-pil, reads the
image back from S3 and writes a thumbnail no larger than 128x128 to thumbnail-bucket."""
import io
import os
import time

from PIL import Image

from conftest import ROLE, make_zip, unique

HANDLER = '''
import boto3, io
from PIL import Image
def lambda_handler(event, context):
    s3 = boto3.client('s3')
    bucket = event['Records'][0]['s3']['bucket']['name']
    key = event['Records'][0]['s3']['object']['key']
    image = Image.open(s3.get_object(Bucket=bucket, Key=key)['Body'])
    image.thumbnail((128, 128))
    buf = io.BytesIO(); image.save(buf, 'JPEG'); buf.seek(0)
    s3.put_object(Bucket='thumbnail-bucket', Key=key, Body=buf)
    return {'statusCode': 200, 'body': 'Thumbnail created'}
'''


def test_upload_makes_a_thumbnail(server, tmp_path):
    lam, s3 = server.client("lambda"), server.client("s3")
    source = unique("photos")
    s3.create_bucket(Bucket=source)
    try:
        s3.create_bucket(Bucket="thumbnail-bucket")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    name = unique("thumb")
    fn = lam.create_function(FunctionName=name, Runtime="python3.12",
                             Handler="lambda_function.lambda_handler", Role=ROLE, Timeout=60,
                             MemorySize=1769,
                             Code={"ZipFile": make_zip({"lambda_function.py": HANDLER})})
    lam.add_permission(FunctionName=name, StatementId="s3invoke",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                       SourceArn="arn:aws:s3:::" + source)
    server.aws("s3api", "put-bucket-notification-configuration", "--bucket", source,
               "--notification-configuration",
               '{"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "%s", '
               '"Events": ["s3:ObjectCreated:*"]}]}' % fn["FunctionArn"], parse=False)

    photo = tmp_path / "holiday-photo.jpg"
    Image.new("RGB", (1024, 768), (200, 120, 40)).save(photo, "JPEG")
    server.aws("s3", "cp", str(photo), "s3://%s/2026/holiday-photo.jpg" % source, parse=False)

    deadline = time.time() + 90
    body = None
    while time.time() < deadline and body is None:
        try:
            body = s3.get_object(Bucket="thumbnail-bucket", Key="2026/holiday-photo.jpg")["Body"].read()
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    assert body is not None, server.read_log()[-3000:]
    thumb = Image.open(io.BytesIO(body))
    assert thumb.format == "JPEG"
    assert max(thumb.size) <= 128 and thumb.size == (128, 96)
