#!/usr/bin/env python3
# botocore-expected.py — prints the canonical requests and Authorization
# values that botocore's SigV4Auth (an implementation independent of ours)
# computes for the requests of tests/unit/test-sigv4.c's own cases (Bedrock
# Converse, Step Functions, SNS Query, End User Messaging SMS, a session
# token).  The test embeds its output; run this again after changing a case:
#
#   python3 tests/data/sigv4/botocore-expected.py
#
# Needs botocore (pip install botocore; checked with 1.43.11).  No network,
# no real credentials: the keys are the AWS test suite's examples.
import datetime
import hashlib
import json

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = ("IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+EXAMPLE"
         "+TOKEN/with/slashes+and+pluses==")
NOW = datetime.datetime(2024, 3, 7, 12, 0, 0)  # 20240307T120000Z

CONVERSE_BODY = ('{"messages":[{"role":"user","content":[{"text":"What is the most popular song on WZPZ?"}]}],'
                 '"inferenceConfig":{"maxTokens":512,"temperature":0.2}}')
SFN_BODY = ('{"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:OrderConversation",'
            '"name":"sms-12065550100-cae173d2",'
            '"input":"{\\"channel\\": \\"sms\\", \\"from\\": \\"+12065550100\\", \\"text\\": \\"I want 2 pizzas\\"}"}')
SNS_BODY = ("Action=Publish&Version=2010-03-31&PhoneNumber=%2B12065550100"
            "&Message=Your%20order%201234%20has%20shipped."
            "&MessageAttributes.entry.1.Name=AWS.SNS.SMS.SMSType"
            "&MessageAttributes.entry.1.Value.DataType=String"
            "&MessageAttributes.entry.1.Value.StringValue=Transactional")
SMS_BODY = '{"DestinationPhoneNumber":"+12065550100","MessageBody":"Your order 1234 has shipped.","MessageType":"TRANSACTIONAL"}'

CASES = [
    # name, service, method, url, headers, body, token
    ("bedrock-converse", "bedrock", "POST",
     "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
     [("Host", "bedrock-runtime.us-east-1.amazonaws.com"), ("Content-Type", "application/json"),
      ("Accept", "application/json")], CONVERSE_BODY, None),
    ("bedrock-converse-raw-colon", "bedrock", "POST",
     "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
     [("Host", "bedrock-runtime.us-east-1.amazonaws.com"), ("Content-Type", "application/json"),
      ("Accept", "application/json")], CONVERSE_BODY, None),
    ("sfn-start-execution", "states", "POST", "https://states.us-east-1.amazonaws.com/",
     [("Host", "states.us-east-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.0"),
      ("X-Amz-Target", "AWSStepFunctions.StartExecution")], SFN_BODY, None),
    ("sns-publish", "sns", "POST", "https://sns.us-east-1.amazonaws.com/",
     [("Host", "sns.us-east-1.amazonaws.com"), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
     SNS_BODY, None),
    ("sns-publish-token", "sns", "POST", "https://sns.us-east-1.amazonaws.com/",
     [("Host", "sns.us-east-1.amazonaws.com"), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
     SNS_BODY, TOKEN),
    ("sms-voice-send-text", "sms-voice", "POST", "https://sms-voice.us-east-1.amazonaws.com/",
     [("Host", "sms-voice.us-east-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.0"),
      ("X-Amz-Target", "PinpointSMSVoiceV2.SendTextMessage")], SMS_BODY, TOKEN),
]


def main():
    botocore.auth.get_current_datetime = lambda: NOW
    for name, service, method, url, headers, body, token in CASES:
        req = AWSRequest(method=method, url=url, data=body.encode())
        for k, v in headers:
            req.headers[k] = v
        auth = botocore.auth.SigV4Auth(Credentials(AKID, SECRET, token), service, "us-east-1")
        signed = []
        canonical_request = auth.canonical_request
        # The canonical request as add_auth() signs it (calling it again
        # afterwards would include the Authorization header just added).
        auth.canonical_request = lambda r: signed.append(canonical_request(r)) or signed[-1]
        auth.add_auth(req)
        creq = signed[0]
        print(f"== {name}")
        print(f"-- body sha256 {hashlib.sha256(body.encode()).hexdigest()}")
        print("-- canonical request")
        print(json.dumps(creq))
        print("-- authorization")
        print(req.headers["Authorization"])


if __name__ == "__main__":
    main()
