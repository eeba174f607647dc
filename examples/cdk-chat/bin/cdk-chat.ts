#!/usr/bin/env node
import * as cdk from "aws-cdk-lib";
import { CdkChatStack } from "../lib/cdk-chat-stack";

const app = new cdk.App();
new CdkChatStack(app, "CdkChatStack");
