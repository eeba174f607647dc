"""Expands a SAM template (AWS::Serverless-2016-10-31) into plain
CloudFormation with AWS's own transform, aws-sam-translator, as
`sam validate` and the CloudFormation service run it.

Reads {"template", "parameters", "region"} as JSON on stdin; writes
{"template": ...} or {"errors": [{"logicalId", "message"}]} on stdout.
Managed policy names are left as they are: wsgate has no IAM to look
them up in, and enforces only the execute-api statements.
"""

import json
import sys

import boto3
from samtranslator.model.exceptions import InvalidDocumentException, InvalidResourceException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


def main():
    request = json.load(sys.stdin)
    session = boto3.session.Session(region_name=request["region"])
    translator = Translator(None, Parser(), boto_session=session)
    try:
        template = translator.translate(
            request["template"],
            parameter_values=request["parameters"],
            get_managed_policy_map=lambda: {},
            # Metadata (a layer's BuildMethod) stays on what SAM makes.
            passthrough_metadata=True,
        )
    except InvalidDocumentException as error:
        errors = []
        for cause in error.causes:
            errors.append(
                {
                    "logicalId": getattr(cause, "_logical_id", None),
                    "message": getattr(cause, "message", str(cause)),
                }
            )
        json.dump({"errors": errors}, sys.stdout)
        return
    except InvalidResourceException as error:
        json.dump({"errors": [{"logicalId": error._logical_id, "message": error.message}]}, sys.stdout)
        return
    json.dump({"template": template}, sys.stdout)


if __name__ == "__main__":
    main()
